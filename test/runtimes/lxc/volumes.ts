// The /volumes step on the host, for real: bind mounts and tmpfs at <root>/volumes/<app>/<volume>.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { json, unmountUnder } from '../../fixtures/helpers.js'
import { isRoot, requirePrereq } from '../../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../../dist/pvdisk.mjs', import.meta.url))

const state = {
  'device.json': json({ groups: [], disks: [{ name: 'data', type: 'volume-disk' }] }),
  web: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@data', '/cache': 'revision@data', '/scratch': 'boot@data', '/run/x': 'boot', 'lxc-overlay': 'permanent' } }) },
  other: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@data' } }) },
}

t.test('volumes up mounts every volume at <root>/volumes/<app>/<volume>, idempotently; down unmounts only that app\'s', async t => {
  if (!requirePrereq(t, isRoot(), 'mounts need root')) return
  const dir = t.testdir({ state, root: {} })
  const root = join(dir, 'root')
  const pv = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync(process.execPath, [cli, 'volumes', ...args, '--state', join(dir, 'state'), '--root', root], { encoding: 'utf8', env })
  const mountinfo = () => readFileSync('/proc/self/mountinfo', 'utf8')
  const V = join(root, 'volumes/web')
  const M = join(root, 'media/pv/dmcrypt/data')
  try {
    const up = pv(['up', 'web', '--revision', '3', '--json'])
    t.equal(up.status, 0, up.stderr)
    t.same((JSON.parse(up.stdout) as { volume: string, result: string }[]).map(m => [m.volume, m.result]), [
      ['docker--cache', 'mounted'], ['docker--data', 'mounted'], ['docker--run-x', 'mounted'], ['docker--scratch', 'mounted'], ['lxc-overlay', 'mounted'],
    ])
    writeFileSync(join(V, 'docker--data/f'), 'through /volumes')
    t.equal(readFileSync(join(M, 'perm/web/docker--data/f'), 'utf8'), 'through /volumes', 'a bind of the volume on its disk')
    writeFileSync(join(V, 'docker--cache/c'), 'rev 3')
    t.ok(existsSync(join(M, 'rev/3/web/docker--cache/c')), 'revision volumes follow --revision')
    t.match(mountinfo(), new RegExp(` ${join(V, 'docker--run-x')} .* - tmpfs `), 'boot without a disk: a tmpfs')
    t.ok(existsSync(join(root, 'storage/disks/perm/web/lxc-overlay')), 'lxc-overlay is a volume too (the rootfs overlay\'s upper dir), here without a disk')
    writeFileSync(join(V, 'docker--scratch/s'), 'boot data')

    const again = pv(['up', 'web', '--revision', '3', '--json'])
    t.ok((JSON.parse(again.stdout) as { result: string }[]).every(m => m.result === 'already mounted'), 'idempotent')
    t.ok(existsSync(join(V, 'docker--scratch/s')), 'a second up (the container may be running) leaves boot data alone')
    t.equal(mountinfo().split('\n').filter(l => l.includes(` ${join(V, 'docker--data')} `)).length, 1, 'mounted once')

    t.equal(pv(['up', 'other']).status, 0)
    const down = pv(['down', 'web'])
    t.equal(down.status, 0, down.stderr)
    t.notMatch(mountinfo(), ` ${V}/`, 'web\'s volumes are gone')
    t.match(mountinfo(), ` ${join(root, 'volumes/other/docker--data')} `, 'another app\'s volumes stay')
    t.match(mountinfo(), ` ${M} `, 'the disk stays up (Pantavisor takes disks down at shutdown)')
    t.equal(readFileSync(join(M, 'perm/web/docker--data/f'), 'utf8'), 'through /volumes', 'the data stays on the disk')

    t.equal(pv(['up', 'web', '--revision', '3']).status, 0)
    t.same(readdirSync(join(V, 'docker--scratch')), [], 'boot is empty at the next start')
    t.equal(pv(['down', 'web']).status, 0)
  } finally {
    unmountUnder(dir)
  }
})

t.test('as LXC runs it: hook version 0 appends NAME lxc TYPE, version 1 passes LXC_NAME', async t => {
  if (!requirePrereq(t, isRoot(), 'mounts need root')) return
  const dir = t.testdir({ state, root: {} })
  const root = join(dir, 'root')
  const pv = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync(process.execPath, [cli, 'volumes', ...args, '--state', join(dir, 'state'), '--root', root], { encoding: 'utf8', env })
  try {
    t.equal(pv(['up', 'other', 'other', 'lxc', 'pre-start']).status, 0, 'version 0, app named in the hook line')
    t.equal(pv(['down', 'other', 'lxc', 'post-stop']).status, 0, 'version 0, the app is the container NAME LXC appends')
    const v1 = pv(['up'], { ...process.env, LXC_NAME: 'other', LXC_HOOK_TYPE: 'pre-start' })
    t.equal(v1.status, 0, v1.stderr)
    t.match(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${join(root, 'volumes/other/docker--data')} `)
    t.equal(pv(['down'], { ...process.env, LXC_NAME: 'other' }).status, 0)
    const none = pv(['up'], { ...process.env, LXC_NAME: '' })
    t.equal(none.status, 2)
    t.match(none.stderr, /no app: name it/)
    t.equal(pv(['up', 'other', 'x', 'y']).status, 2, 'anything else appended is a usage error')
  } finally {
    unmountUnder(dir)
  }
})

t.test('invalid input: exit 2 and nothing mounted', async t => {
  const dir = t.testdir({ state: { ...state, web: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@nope' } }) } }, root: {} })
  const r = spawnSync(process.execPath, [cli, 'volumes', 'up', 'web', '--state', join(dir, 'state'), '--root', join(dir, 'root')], { encoding: 'utf8' })
  t.equal(r.status, 2)
  t.match(r.stderr, /persistence-disk-unknown/)
  t.same(readdirSync(join(dir, 'root')), [], 'nothing created')
})
