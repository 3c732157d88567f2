import t from 'tap'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { acquireLock } from '../../plugin/disks/lock.js'

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
