// dual disks on the host, with real bind sub-disks and cp -a: every init_order action, the
// first success winning, the dual's place bound to the winner, copy-once-to-primary verified
// and marked only when complete, and kill -9 at every step of the copy. (With crypt
// sub-disks, on a real kernel: test/disks/uml-provision.ts.)
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { json, unmountUnder } from '../fixtures/helpers.js'
import { isRoot, requirePrereq } from '../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))
t.setTimeout(300_000)

const device = (order: string[]) => json({ groups: [], disks: [{ name: 'new', type: 'volume-disk' }, { name: 'old', type: 'volume-disk' }], disks_v3: [{ name: 'd', type: 'dual', disks: ['new', 'old'], init_order: order }] })

const withState = async (t: Test, order: string[], fn: (s: { pv: (args: string[], env?: NodeJS.ProcessEnv) => ReturnType<typeof spawnSync>, root: string, setOrder: (o: string[]) => void }) => Promise<void>): Promise<void> => {
  const dir = t.testdir({ state: { 'device.json': device(order) }, root: {} })
  const root = join(dir, 'root')
  const pv = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [cli, ...args, '--state', join(dir, 'state'), '--root', root], { encoding: 'utf8', env: { ...process.env, ...env } })
  try {
    await fn({ pv, root, setOrder: o => writeFileSync(join(dir, 'state/device.json'), device(o)) })
  } finally {
    unmountUnder(dir)
  }
}
const D = (root: string, name: string) => join(root, 'media/pv/dmcrypt', name)
const mountinfo = () => readFileSync('/proc/self/mountinfo', 'utf8')

t.test('init_order: the first action that succeeds wins, and the dual\'s place is bound to that sub-disk', async t => {
  if (!requirePrereq(t, isRoot(), 'bind disks need root')) return
  await withState(t, ['primary', 'secondary', 'create-secondary'], async ({ pv, root, setOrder }) => {
    const first = pv(['disk', 'up', 'd'])
    t.equal(first.status, 0, String(first.stderr))
    t.match(String(first.stdout), /^d: mounted secondary "old"$/m, 'neither exists: primary and secondary fail, create-secondary makes the secondary')
    writeFileSync(join(D(root, 'd'), 'f'), 'through the dual')
    t.equal(readFileSync(join(D(root, 'old'), 'f'), 'utf8'), 'through the dual', 'the dual is a bind of the winner')
    t.match(String(pv(['disk', 'up', 'd']).stdout), /already mounted \(old \(secondary\)\)/)
    t.match(String(pv(['disk', 'status', 'd']).stdout), /^d +dual +mounted /m)
    t.equal(pv(['disk', 'down', 'd']).status, 0)
    t.notMatch(mountinfo(), ` ${D(root, 'd')} `, 'down unbinds the dual')
    t.notMatch(mountinfo(), ` ${D(root, 'old')} `, 'and takes the winner down')
    setOrder(['primary', 'secondary'])
    t.match(String(pv(['disk', 'up', 'd']).stdout), /^d: mounted secondary "old"$/m, 'secondary: the existing one, not created')
    pv(['disk', 'down', 'd'])
    setOrder(['primary'])
    const none = pv(['disk', 'up', 'd'])
    t.equal(none.status, 1)
    t.match(String(none.stderr), /dual disk "d": no init_order action succeeded \(primary: "new" does not exist yet\)/)
    t.notMatch(mountinfo(), ` ${D(root, 'd')} `, 'nothing bound after a failure')
    setOrder(['create-primary'])
    t.match(String(pv(['disk', 'up', 'd']).stdout), /^d: mounted primary "new"$/m)
    pv(['disk', 'down', 'd'])
  })
})

const fill = (dir: string): void => {
  mkdirSync(join(dir, 'perm/web/docker--data/sub'), { recursive: true })
  writeFileSync(join(dir, 'perm/web/docker--data/a'), 'old data\n')
  writeFileSync(join(dir, 'perm/web/docker--data/sub/big'), randomBytes(1 << 20))
  chmodSync(join(dir, 'perm/web/docker--data/sub'), 0o700)
}

/** the secondary made and filled through the dual, then init_order set to copy it once */
const oldDataThenCopyOnce = (pv: (args: string[]) => unknown, root: string, setOrder: (o: string[]) => void): void => {
  pv(['disk', 'up', 'd'])
  fill(D(root, 'd'))
  pv(['disk', 'down', 'd'])
  setOrder(['copy-once-to-primary', 'primary'])
}

t.test('copy-once-to-primary: the secondary\'s data onto the new primary, verified, marked, then primary from then on', async t => {
  if (!requirePrereq(t, isRoot(), 'bind disks need root')) return
  await withState(t, ['create-secondary'], async ({ pv, root, setOrder }) => {
    oldDataThenCopyOnce(pv, root, setOrder)
    const up = pv(['disk', 'up', 'd'])
    t.equal(up.status, 0, String(up.stderr))
    t.match(String(up.stdout), /^d: copied secondary "old" onto primary "new" and mounted it$/m)
    t.equal(readFileSync(join(D(root, 'd'), 'perm/web/docker--data/a'), 'utf8'), 'old data\n', 'the data is on the primary, through the dual')
    t.ok(existsSync(join(root, 'var/lib/pvdisk/dual_new_old.init_done')), 'marked done, in /var/lib (it survives a reboot)')
    t.notMatch(mountinfo(), ` ${D(root, 'old')} `, 'the secondary is down again')
    const usage = JSON.parse(String(pv(['usage', '--json']).stdout)) as { volumes: { disk: string, volume: string }[] }
    t.same(usage.volumes.filter(v => v.volume === 'docker--data').map(v => v.disk), ['d'], 'usage counts the volume once, through the dual')
    writeFileSync(join(D(root, 'd'), 'perm/web/docker--data/a'), 'newer data\n')
    pv(['disk', 'down', 'd'])
    t.match(String(pv(['disk', 'up', 'd']).stdout), /^d: mounted primary "new"$/m, 'once: the next up mounts the primary')
    t.equal(readFileSync(join(D(root, 'd'), 'perm/web/docker--data/a'), 'utf8'), 'newer data\n', 'and the copy never runs over newer data')
    pv(['disk', 'down', 'd'])
  })
})

t.test('kill -9 at every step of copy-once-to-primary: never marked before the copy is complete; the rerun finishes it', async t => {
  if (!requirePrereq(t, isRoot(), 'bind disks need root')) return
  await withState(t, ['create-secondary'], async ({ pv, root, setOrder }) => {
    oldDataThenCopyOnce(pv, root, setOrder)
    const marker = join(root, 'var/lib/pvdisk/dual_new_old.init_done')
    let crashes = 0
    for (let step = 1; step <= 30; step++) {
      const r = pv(['disk', 'up', 'd'], { PVDISK_CRASH_AT: String(step) })
      if (r.signal !== 'SIGKILL') {
        t.equal(r.status, 0, `step ${step}: the run completes ${r.stderr}`)
        break
      }
      crashes++
      const backing = (name: string) => join(root, 'storage/pv/volume-disk', name, 'perm/web/docker--data')
      if (existsSync(marker)) t.same(readdirSync(join(backing('new'), 'sub')), ['big'], `step ${step}: marked only with the copy complete`)
      t.equal(readFileSync(join(backing('old'), 'a'), 'utf8'), 'old data\n', `step ${step}: the secondary is intact`)
      unmountUnder(join(root, 'media'))
      const again = pv(['disk', 'up', 'd'])
      t.equal(again.status, 0, `step ${step}: the rerun succeeds ${again.stderr}`)
      t.equal(readFileSync(join(D(root, 'd'), 'perm/web/docker--data/a'), 'utf8'), 'old data\n', `step ${step}: the data is on the dual`)
      t.ok(existsSync(marker), `step ${step}: marked`)
      t.same(readdirSync(join(D(root, 'd'), 'perm/web/docker--data/sub')), ['big'])
      pv(['disk', 'down', 'd'])
      unmountUnder(join(root, 'media'))
      spawnSync('rm', ['-rf', marker, join(root, 'storage/pv/volume-disk/new')])
    }
    t.ok(crashes >= 5, `${crashes} crash points`)
  })
})
