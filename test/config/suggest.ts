import t from 'tap'
import { closest, didYouMean } from '../../plugin/config/suggest.js'

t.test('finds near misses, ignores far ones', async t => {
  t.equal(closest('permanant', ['permanent', 'revision', 'boot']), 'permanent')
  t.equal(closest('Permanent', ['permanent', 'revision']), 'permanent')
  t.equal(closest('dsik', ['disk', 'persistence']), 'disk', 'a transposition is one edit')
  t.equal(closest('a', ['g', 'b']), undefined, 'one-letter names are never guessed')
  t.equal(closest('zzzzzz', ['permanent']), undefined)
  t.equal(closest('x', []), undefined)
  t.equal(didYouMean('bot', ['boot']), 'did you mean "boot"?')
  t.equal(didYouMean('qqq', ['boot']), undefined)
})
