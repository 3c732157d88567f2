// Data that follows its volume, on the host with real bind disks, loop-mounted ext4, cp -a
// and a real dockerd: a volume moved to another disk between two revisions is migrated once
// (every file, mode, owner and link intact), listed by --dry-run, refused into a boot volume
// or a disk too small, and safe against kill -9 at every step.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDockerd } from '../fixtures/dockerd.js'
import { makeBusyboxRootfs } from '../fixtures/busybox.js'
import { findInPath } from '../../plugin/host/run.js'
import { json, unmountUnder, until } from '../fixtures/helpers.js'
import { fill, fingerprint } from '../fixtures/trees.js'
import { isRoot, requirePrereq } from '../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))
t.setTimeout(600_000)

const device = json({ groups: [{ name: 'app' }], disks: [{ name: 'a', type: 'volume-disk' }, { name: 'b', type: 'volume-disk' }] })
const src = (data: string, extra: Record<string, unknown> = {}) => json({ '#spec': 'service-manifest-src@1', docker_name: 'local/busybox', docker_tag: 'latest', persistence: { '/data': data, '/cache': 'revision@a' }, ...extra })

/** a state with disks a and b, and its root; everything mounted below it is unmounted when fn ends */
const withSetup = async (t: Test, fn: (s: ReturnType<typeof setupIn>) => Promise<void>): Promise<void> => {
  const s = setupIn(t)
  try {
    await fn(s)
  } finally {
    unmountUnder(s.dir)
  }
}

const setupIn = (t: Test) => {
  const dir = t.testdir({ state: { 'device.json': device, web: { 'src.json': src('permanent@a') } }, root: {} })
  const state = join(dir, 'state')
  const root = join(dir, 'root')
  const pv = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [cli, ...args, '--state', state, '--root', root], { encoding: 'utf8', env: { ...process.env, ...env } })
  const A = join(root, 'media/pv/dmcrypt/a/perm/web/docker--data')
  const B = join(root, 'media/pv/dmcrypt/b/perm/web/docker--data')
  return { dir, state, root, pv, A, B, moveTo: (data: string) => writeFileSync(join(state, 'web/src.json'), src(data)) }
}

t.test('volumes up: a volume moved to another disk takes its data along, once; --dry-run lists it first', async t => {
  if (!requirePrereq(t, isRoot(), 'bind disks need root')) return
  await withSetup(t, async ({ pv, A, B, moveTo, root }) => {
    t.equal(pv(['volumes', 'up', 'web', '--revision', '1']).status, 0)
    fill(A)
    writeFileSync(join(root, 'media/pv/dmcrypt/a/rev/1/web/docker--cache/c'), 'revision 1')
    const before = fingerprint(A)
    t.equal(pv(['volumes', 'down', 'web']).status, 0)

    moveTo('permanent@b')
    t.equal(pv(['disk', 'up', 'b']).status, 0)
    const dry = pv(['migrate', '--dry-run', '--revision', '2'])
    t.equal(dry.status, 0, dry.stderr)
    t.match(dry.stdout, /^web \/data: permanent@a -> permanent@b, \d+ files, [\d.]+[KMG]? \(would move\)\n {2}\S+\/a\/perm\/web\/docker--data -> \S+\/b\/perm\/web\/docker--data$/m)
    t.notMatch(dry.stdout, /cache/, 'a revision volume of a new revision starts empty, as always: nothing to move')
    t.notOk(existsSync(B), 'a dry run moves nothing')
    t.match(pv(['plan']).stdout, /^# migrate \/data of web: \S+\/a\/perm\/web\/docker--data to \S+\/b\/perm\/web\/docker--data \(cp -a/m, 'plan shows it too')

    const up = pv(['volumes', 'up', 'web', '--revision', '2'])
    t.equal(up.status, 0, up.stderr)
    t.same(fingerprint(B), before, 'every file, mode, owner, link and byte arrived')
    t.same(fingerprint(A), before, 'the old copy stays until gc')
    t.same(readdirSync(join(root, 'media/pv/dmcrypt/b/perm/web')), ['docker--data'], 'no temporary copy left')
    const journal = JSON.parse(readFileSync(join(root, 'var/lib/pvdisk/migrations.json'), 'utf8'))
    t.match(journal.migrations, [{ app: 'web', volume: 'docker--data', from: A, to: B, state: 'done' }])
    t.match(JSON.parse(readFileSync(join(root, 'var/lib/pvdisk/placements/web.json'), 'utf8')).volumes['docker--data'], { persistence: 'permanent', disk: 'b' })

    writeFileSync(join(B, 'new'), 'written after the move')
    t.equal(pv(['volumes', 'down', 'web']).status, 0)
    t.equal(pv(['volumes', 'up', 'web', '--revision', '2']).status, 0)
    t.equal(readFileSync(join(B, 'new'), 'utf8'), 'written after the move', 'once: a later start migrates nothing again')
    t.match(pv(['migrate', '--dry-run', '--revision', '2']).stdout, /^nothing to migrate$/m)
    pv(['volumes', 'down', 'web'])

    // moved back within the grace period: the copy left on a is stale, and is set aside for gc, never used
    moveTo('permanent@a')
    t.equal(pv(['volumes', 'up', 'web', '--revision', '3']).status, 0)
    t.equal(readFileSync(join(A, 'new'), 'utf8'), 'written after the move', 'the data written on b came back, not the stale copy')
    const aside = readdirSync(join(root, 'media/pv/dmcrypt/a/perm/web')).filter(n => n.includes('pvdisk-superseded'))
    t.equal(aside.length, 1, 'the stale copy is set aside')
    pv(['volumes', 'down', 'web'])
    const kept = pv(['gc', '--dry-run'])
    t.match(kept.stdout, /kept: grace period: \S+\/b\/perm\/web\/docker--data/, 'gc keeps old copies for the grace period')
    t.match(kept.stdout, /kept: grace period: \S+pvdisk-superseded/)
    const gc = pv(['gc', '--grace', '0'])
    t.equal(gc.status, 0, gc.stderr)
    t.match(gc.stdout, /removed: \S+\/b\/perm\/web\/docker--data/)
    t.notOk(existsSync(B), 'after the grace period gc removes the old copy')
    t.same(readdirSync(join(root, 'media/pv/dmcrypt/a/perm/web')), ['docker--data'], 'and the stale one')
    t.equal(readFileSync(join(A, 'new'), 'utf8'), 'written after the move', 'the live data stays')
    t.same(JSON.parse(readFileSync(join(root, 'var/lib/pvdisk/migrations.json'), 'utf8')).migrations, [], 'the journal is empty')
  })
})

t.test('permanent data never goes into a boot volume silently; a disk too small is refused before copying', async t => {
  if (!requirePrereq(t, isRoot(), 'bind disks and loop devices need root')) return
  await withSetup(t, async ({ pv, A, B, moveTo, root, dir }) => {
    // disk b's backing directory is a 4 MiB ext4: 8 MiB of data cannot fit
    const img = join(dir, 'small.img')
    t.equal(spawnSync('mkfs.ext4', ['-q', img, '4M']).status, 0)
    const backing = join(root, 'storage/pv/volume-disk/b')
    mkdirSync(backing, { recursive: true })
    t.equal(spawnSync('mount', ['-o', 'loop', img, backing]).status, 0, 'a small filesystem for disk b')
    t.equal(pv(['volumes', 'up', 'web']).status, 0)
    fill(A, 8 << 20)
    pv(['volumes', 'down', 'web'])
    moveTo('boot@b')
    const boot = pv(['volumes', 'up', 'web'])
    t.equal(boot.status, 2)
    t.match(boot.stderr, /\/data of app "web" was permanent@a and is now boot@b: its data \(in \S+\) would not follow into a boot volume/)
    t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${root}/volumes/web/`, 'nothing mounted')
    t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${root}/media/pv/dmcrypt/b `, 'refused before the new disk comes up')

    moveTo('permanent@b')
    const full = pv(['volumes', 'up', 'web'])
    t.equal(full.status, 1)
    t.match(full.stderr, /not enough space for the data of \/data of app "web": it needs \d+ bytes and \S+ has \d+ free; nothing copied, nothing started/)
    t.same(existsSync(B) ? readdirSync(B) : [], [], 'nothing copied')
    t.same(readdirSync(join(root, 'media/pv/dmcrypt/b/perm/web')).filter(n => n.includes('migrating')), [], 'no temporary copy')
    t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${root}/volumes/web/`, 'nothing mounted for the container')
    t.match(JSON.parse(readFileSync(join(root, 'var/lib/pvdisk/placements/web.json'), 'utf8')).volumes['docker--data'], { disk: 'a' }, 'the old placement is still the record: the next run tries again')
  })
})

t.test('kill -9 at every step of a migration: the new place is empty or complete; the rerun finishes it', async t => {
  if (!requirePrereq(t, isRoot(), 'bind disks need root')) return
  await withSetup(t, async ({ pv, A, B, moveTo }) => {
    t.equal(pv(['volumes', 'up', 'web']).status, 0)
    fill(A)
    const before = fingerprint(A)
    pv(['volumes', 'down', 'web'])
    moveTo('permanent@b')
    let crashes = 0
    for (let step = 1; step <= 40; step++) {
      const r = pv(['migrate'], { PVDISK_CRASH_AT: String(step) })
      if (r.signal !== 'SIGKILL') {
        t.equal(r.status, 0, `step ${step}: the run completes ${r.stderr}`)
        break
      }
      crashes++
      const there = existsSync(B) ? readdirSync(B) : []
      t.ok(there.length === 0 || JSON.stringify(fingerprint(B)) === JSON.stringify(before), `step ${step}: the new place is empty or complete`)
      t.same(fingerprint(A), before, `step ${step}: the old copy is intact`)
    }
    t.ok(crashes >= 4, `${crashes} crash points`)
    t.same(fingerprint(B), before, 'after the reruns, the data is complete in its new place')
    t.match(pv(['migrate', '--dry-run']).stdout, /^nothing to migrate$/m)
  })
})

t.test('pvdisk up with a running container: the next revision moves /data to another disk; the new container finds its files', async t => {
  const d = await startDockerd(t)
  if (!d) return
  await withSetup(t, async ({ pv, A, B, state }) => {
    writeFileSync(join(state, 'web/src.json'), src('permanent@a', { config: { Cmd: ['sh', '-c', 'echo started >> /data/starts; sleep 600'] } }))
    const env = { DOCKER_HOST: d.host }
    t.teardown(() => pv(['down'], env))
    const up1 = pv(['up', '--network', 'none', '--revision', '1'], env)
    t.equal(up1.status, 0, up1.stderr)
    t.ok(await until(() => existsSync(join(A, 'starts'))), 'revision 1 runs and writes to disk a')
    fill(A)
    const before = fingerprint(A)
    writeFileSync(join(state, 'web/src.json'), src('permanent@b', { config: { Cmd: ['sh', '-c', 'echo started >> /data/starts; sleep 600'] } }))
    const up2 = pv(['up', '--network', 'none', '--revision', '2'], env)
    t.equal(up2.status, 0, up2.stderr)
    t.match(up2.stdout, /migrated \/data of web \(permanent@a -> permanent@b\): \d+ files, \d+ bytes/)
    t.match(up2.stdout, /web: recreated pvdisk-web/)
    t.ok(await until(() => readFileSync(join(B, 'starts'), 'utf8') === 'started\nstarted\n'), 'the new container appends to the file the old one wrote: its data followed it')
    const after = fingerprint(B)
    delete after['/starts']
    const was = { ...before }
    delete was['/starts']
    t.same(after, was, 'every other file, mode and owner is intact')
  })
})

t.test('the OCI hook under runc: a volume moved to another disk reaches the next container with its data', async t => {
  if (!requirePrereq(t, findInPath('runc') !== undefined, 'runc is not installed (it comes with docker.io)')) return
  if (!requirePrereq(t, isRoot(), 'runc needs root')) return
  await withSetup(t, async ({ dir, state, root, A, B, moveTo }) => {
    const hookProgram = fileURLToPath(new URL('../../dist/pvdisk-oci-hook.cjs', import.meta.url))
    const run = (name: string, cmd: string) => {
      const b = join(dir, `bundle-${name}`)
      makeBusyboxRootfs(join(b, 'rootfs'))
      spawnSync('runc', ['spec', '--bundle', b])
      const config = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'))
      Object.assign(config.process, { terminal: false, args: ['sh', '-c', cmd] })
      config.root.readonly = false
      config.annotations = { 'io.pvdisk.state': state, 'io.pvdisk.app': 'web', 'io.pvdisk.root': root }
      config.hooks = { createRuntime: [{ path: process.execPath, args: [process.execPath, hookProgram, '--stage', 'createRuntime'], timeout: 60 }] }
      writeFileSync(join(b, 'config.json'), JSON.stringify(config))
      return spawnSync('runc', ['--root', join(dir, 'runc'), 'run', '--bundle', b, `pvdisk-migrate-${name}-${process.pid}`], { encoding: 'utf8', timeout: 60_000 })
    }
    const first = run('1', 'echo from-the-first > /data/f; chmod 600 /data/f')
    t.equal(first.status, 0, first.stderr)
    t.equal(readFileSync(join(A, 'f'), 'utf8'), 'from-the-first\n', 'the first container wrote to disk a')
    moveTo('permanent@b')
    const second = run('2', 'cat /data/f; stat -c %a /data/f')
    t.equal(second.status, 0, second.stderr)
    t.equal(second.stdout, 'from-the-first\n600\n', 'the second container, with /data on disk b, reads the first one\'s file, mode intact')
    t.equal(readFileSync(join(B, 'f'), 'utf8'), 'from-the-first\n')
  })
})
