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

t.test('a long unknown name against short ones is answered without computing hopeless distances', async t => {
  const long = 'd'.repeat(4096)
  t.equal(closest(long, Array.from({ length: 50 }, (_, i) => `disk-${i}`)), undefined)
  t.equal(closest(`${'d'.repeat(4095)}x`, [long, 'disk']), long, 'a long name still finds its near twin')
})
