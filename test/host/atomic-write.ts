// A file written again and again by a daemon: writes asked for while one is under way become
// one write of the newest content; each caller is answered once its content is on disk; a
// failed write fails its callers and the next write tries again.
// The writes are done by a thread of their own: it keeps no process alive once its writes
// are done, and if it dies its writes fail and the next one starts another.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GroupedFile, stopWriterThread } from '../../plugin/host/atomic-write.js'

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

t.test('the writer thread keeps a process alive only while a write is under way', async t => {
  const dir = t.testdir({})
  const built = fileURLToPath(new URL('../../dist/host/atomic-write.js', import.meta.url))
  // a write asked for and never awaited, by a script that then ends: the process waits for it, then exits
  const script = `import { GroupedFile } from ${JSON.stringify(built)}
const a = new GroupedFile(${JSON.stringify(join(dir, 'a.json'))}, () => 'a\\n', 0o600)
await a.write()
console.log('a written')
new GroupedFile(${JSON.stringify(join(dir, 'b.json'))}, () => 'b\\n', 0o600).write()`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 })
  t.equal(r.signal, null, 'the process ended on its own (not killed by the timeout)')
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stdout, 'a written\n')
  t.equal(readFileSync(join(dir, 'a.json'), 'utf8'), 'a\n')
  t.equal(readFileSync(join(dir, 'b.json'), 'utf8'), 'b\n', 'the write no one awaited was done before the process exited')
  t.same(readdirSync(dir).sort(), ['a.json', 'b.json'], 'no temp file is left behind')
})

t.test('if the writer thread stops, the writes it had fail, and the next write starts another', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'state.json')
  const g = new GroupedFile(file, () => 'x\n', 0o600)
  await stopWriterThread() // the next write starts a thread of its own
  const lost = g.write()
  const stopped = stopWriterThread() // before the new thread has run anything
  await t.rejects(lost, /stopped.*may not have happened/, 'the caller hears that its write may not be on disk')
  await stopped
  t.same(readdirSync(dir), [], 'nothing was written')
  await g.write()
  t.equal(readFileSync(file, 'utf8'), 'x\n', 'the next write is done by a new thread')
  t.equal(statSync(file).mode & 0o777, 0o600)
})
