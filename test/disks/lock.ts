import t from 'tap'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { acquireLock } from '../../plugin/disks/lock.js'
import { withTmpfs } from '../fixtures/helpers.js'

t.test('a second holder waits with a bound, then fails clearly', async t => {
  const dir = t.testdir({})
  const first = await acquireLock(dir, 'disk')
  const started = Date.now()
  await t.rejects(acquireLock(dir, 'disk', { timeoutMs: 300 }), { code: 'ELOCKED', message: new RegExp(`locked by another pvdisk process \\(pid ${process.pid}\\)`) })
  t.ok(Date.now() - started >= 300)
  first.release()
  const again = await acquireLock(dir, 'disk', { timeoutMs: 300 })
  again.release()
  t.equal(existsSync(join(dir, 'disk.lock')), false)
})

t.test('a waiter gets the lock once it is released', async t => {
  const dir = t.testdir({})
  const first = await acquireLock(dir, 'd')
  setTimeout(() => first.release(), 150)
  const second = await acquireLock(dir, 'd', { timeoutMs: 5000 })
  second.release()
  t.pass()
})

t.test('a lock left by a dead process (kill -9) is taken over', async t => {
  const dir = t.testdir({ 'd.lock': '999999999 12345\n' })
  const lock = await acquireLock(dir, 'd', { timeoutMs: 300 })
  lock.release()
  writeFileSync(join(dir, 'd.lock'), `${process.pid} 1\n`) // our pid, but another start time: pid reuse
  ;(await acquireLock(dir, 'd', { timeoutMs: 300 })).release()
  t.pass()
})

t.test('a link or a directory at the lock path fails at once, clearly, and is never followed', async t => {
  const { symlinkSync, mkdirSync, readFileSync } = await import('node:fs')
  const dir = t.testdir({ elsewhere: 'not a lock' })
  symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling.lock'))
  symlinkSync(join(dir, 'elsewhere'), join(dir, 'existing.lock'))
  mkdirSync(join(dir, 'dir.lock'))
  for (const [name, what] of [['dangling', 'a symbolic link'], ['existing', 'a symbolic link'], ['dir', 'a directory']] as const) {
    const started = Date.now()
    await t.rejects(acquireLock(dir, name, { timeoutMs: 10_000 }), { code: 'EDISK', message: new RegExp(`lock .*${name}\\.lock is ${what}; pvdisk never follows or replaces it`) })
    t.ok(Date.now() - started < 2_000, `${name}: fails at once, no wait and no busy loop`)
  }
  t.equal(readFileSync(join(dir, 'elsewhere'), 'utf8'), 'not a lock', 'the link target is untouched')
  t.equal(existsSync(join(dir, 'nowhere')), false, 'nothing is created through a dangling link')
})

t.test('an empty lock (its owner died between create and write, or ran out of space) is taken over after a grace period', async t => {
  const { utimesSync } = await import('node:fs')
  const dir = t.testdir({ 'd.lock': '' })
  const old = new Date(Date.now() - 60_000)
  utimesSync(join(dir, 'd.lock'), old, old)
  ;(await acquireLock(dir, 'd', { timeoutMs: 1_000 })).release()
  writeFileSync(join(dir, 'd.lock'), '')
  await t.rejects(acquireLock(dir, 'd', { timeoutMs: 300 }), { code: 'ELOCKED' }, 'a fresh empty lock is an owner about to write')
})

t.test('no space for the lock: a clear error, and no empty lock left behind', async t => {
  const { readdirSync } = await import('node:fs')
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') t.fail('needs root under CI (a tmpfs to fill)')
    return
  }
  const mnt = join(t.testdir({ full: {} }), 'full')
  t.ok(await withTmpfs(mnt, '64k', true, async () => {
    await t.rejects(acquireLock(mnt, 'd', { timeoutMs: 300 }), { code: 'EDISK', message: /cannot (create|write) the lock .*d\.lock: ENOSPC/ })
    t.same(readdirSync(mnt), ['filler'], 'no empty lock file left')
  }), 'a full tmpfs')
})
