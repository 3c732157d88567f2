// A file written again and again by a daemon: writes asked for while one is under way become
// one write of the newest content; each caller is answered once its content is on disk; a
// failed write fails its callers and the next write tries again.
import t from 'tap'
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { GroupedFile } from '../../plugin/host/atomic-write.js'

t.test('writes asked for together share one write of the newest content, and each waits for it', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'state.json')
  let value = 0
  let writes = 0
  const g = new GroupedFile(file, () => { writes++; return `${value}\n` }, 0o600)
  value = 1
  const first = g.write()
  const seen: string[] = []
  const rest = [2, 3, 4, 5].map(v => {
    value = v
    return g.write().then(() => { seen.push(readFileSync(file, 'utf8')) })
  })
  await first
  await Promise.all(rest)
  t.equal(readFileSync(file, 'utf8'), '5\n', 'the newest content is on disk')
  t.ok(writes <= 2, `${writes} writes for 5 asked: the first, then one for the four that waited`)
  t.same(seen, ['5\n', '5\n', '5\n', '5\n'], 'each caller is answered once its content (or a newer one) is on disk')
  t.equal(statSync(file).mode & 0o777, 0o600)
  t.same(readdirSync(dir), ['state.json'], 'no temp file is left behind')
})

t.test('a failed write fails the callers waiting for it; the next one tries again', async t => {
  if (process.getuid?.() === 0) {
    t.comment('as root a read-only directory is still writable: the failure comes from a missing directory instead')
  }
  const dir = t.testdir({})
  const sub = join(dir, 'sub')
  const g = new GroupedFile(join(sub, 'state.json'), () => 'x\n')
  await t.rejects(g.write(), { code: 'ENOENT' }, 'no directory to write in: the caller hears of it')
  mkdirSync(sub)
  chmodSync(sub, 0o755)
  await g.write()
  t.equal(readFileSync(join(sub, 'state.json'), 'utf8'), 'x\n', 'and the next write succeeds')
})
