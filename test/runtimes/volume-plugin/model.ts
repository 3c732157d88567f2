// The VolumeDriver plugin against a model: 1,000 operations from concurrent clients over
// its socket, with kill -9 restarts between batches. After every batch the plugin's answers
// match the model exactly: every volume's holders, Remove refused exactly while held, a boot
// tmpfs mounted exactly while held (none leaked, none dropped), every permanent volume's
// data still there, and data that follows a volume created again elsewhere (docker volume
// rm keeps it): at its first Mount it is found in the new place, and a Create as boot is
// refused while its last place holds data.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { json, postJson as post, unmountUnder } from '../../fixtures/helpers.js'
import { isRoot, requirePrereq } from '../../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../../dist/pvdisk.cjs', import.meta.url))
const OPS = Number(process.env.MODEL_OPS ?? 1000)
t.setTimeout(600_000)

const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296
}

interface ModelVolume { persistence: string, holders: Set<string>, data?: string }

t.test(`${OPS} operations, concurrent clients, kill -9 restarts: the plugin matches the model`, async t => {
  if (!requirePrereq(t, isRoot(), 'the plugin mounts tmpfs and bind disks: root')) return
  const dir = t.testdir({ state: { 'device.json': json({ groups: [], disks: [{ name: 'data', type: 'volume-disk', aliases: ['dm-versatile'] }] }) }, root: {} })
  const socket = `/tmp/pvdisk-model-${process.pid}.sock` // a unix socket path must stay short
  const root = join(dir, 'root')
  let plugin: ChildProcess | undefined
  const start = async () => {
    plugin = spawn(process.execPath, [cli, 'serve', '--socket', socket, '--state', join(dir, 'state'), '--root', root], { stdio: ['ignore', 'ignore', 'ignore'] })
    // a socket file left by the killed plugin exists at once: wait for an answer instead
    for (const end = Date.now() + 15_000; Date.now() < end;) {
      if (await post(socket, '/Plugin.Activate', {}).then(() => true, () => false)) return
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    t.fail('the plugin does not answer')
  }
  const kill9 = async () => {
    const p = plugin
    if (!p || p.exitCode !== null) return
    const gone = new Promise(resolve => p.once('exit', resolve))
    p.kill('SIGKILL')
    await gone
  }
  const r = rng(42)
  const names = Array.from({ length: 12 }, (_, i) => `v${i}`)
  const kinds = ['permanent@data', 'permanent@dm-versatile', 'boot', 'boot@data', 'revision']
  const model = new Map<string, ModelVolume>()
  // what outlives a Remove: the place each name was last mounted at, the places that hold data, the last data written
  const placeOf = (kind: string) => kind.startsWith('permanent') ? 'perm' : kind === 'revision' ? 'rev' : 'boot'
  const lastPlace = new Map<string, string>()
  const holding = new Set<string>()
  const lastWritten = new Map<string, string>()
  const lastHolds = (name: string) => lastPlace.has(name) && lastPlace.get(name) !== 'boot' && holding.has(`${name}:${lastPlace.get(name)}`)
  const mountinfo = () => readFileSync('/proc/self/mountinfo', 'utf8')
  const tmpfsOf = (name: string) => join(root, 'run/pvdisk/tmpfs/web', name)
  let ops = 0
  let restarts = 0
  let mismatches = 0
  let followed = 0
  let refused = 0
  const expect = (ok: boolean, what: string) => {
    if (!ok && ++mismatches <= 5) t.fail(what)
  }
  try {
    await start()
    while (ops < OPS) {
      // a batch: each volume at most once, so the requests commute and the model is exact whatever their order
      const batch = names.filter(() => r() < 0.6).map(name => {
        const v = model.get(name)
        const roll = r()
        if (!v) return { name, op: 'create', kind: kinds[Math.floor(r() * kinds.length)] ?? 'boot' }
        if (roll < 0.45) return { name, op: 'mount', id: `c${Math.floor(r() * 4)}` }
        if (roll < 0.8 && v.holders.size > 0) return { name, op: 'unmount', id: [...v.holders][Math.floor(r() * v.holders.size)] ?? '' }
        return { name, op: 'remove' }
      })
      const replies = await Promise.all(batch.map(b => {
        if (b.op === 'create') return post(socket, '/VolumeDriver.Create', { Name: b.name, Opts: { app: 'web', persistence: b.kind } })
        if (b.op === 'mount') return post(socket, '/VolumeDriver.Mount', { Name: b.name, ID: b.id })
        if (b.op === 'unmount') return post(socket, '/VolumeDriver.Unmount', { Name: b.name, ID: b.id })
        return post(socket, '/VolumeDriver.Remove', { Name: b.name })
      }))
      ops += batch.length
      batch.forEach((b, i) => {
        const reply = replies[i] ?? {}
        const v = model.get(b.name)
        if (b.op === 'create' && placeOf(b.kind ?? '') === 'boot' && lastHolds(b.name)) {
          expect(/would not follow into a boot volume/.test(String(reply.Err)), `create ${b.name} as ${b.kind} where its data is: ${JSON.stringify(reply)}`)
          refused++
        } else if (b.op === 'create') {
          expect(reply.Err === undefined, `create ${b.name}: ${String(reply.Err)}`)
          model.set(b.name, { persistence: b.kind ?? '', holders: new Set() })
        } else if (b.op === 'mount' && v) {
          expect(typeof reply.Mountpoint === 'string' && reply.Mountpoint !== '', `mount ${b.name}: ${JSON.stringify(reply)}`)
          const place = placeOf(v.persistence)
          const follows = v.holders.size === 0 && lastPlace.get(b.name) !== place && lastHolds(b.name)
          if (v.holders.size === 0) lastPlace.set(b.name, place)
          if (follows) {
            holding.add(`${b.name}:${place}`)
            followed++
          }
          v.holders.add(b.id ?? '')
          if (v.persistence.startsWith('permanent') && reply.Mountpoint) {
            const f = join(String(reply.Mountpoint), 'data')
            if (follows) expect(existsSync(f) && readFileSync(f, 'utf8') === lastWritten.get(b.name), `${b.name}'s data did not follow it: ${existsSync(f) ? readFileSync(f, 'utf8') : 'none'}, not ${lastWritten.get(b.name)}`)
            if (v.data === undefined) {
              v.data = `written-${ops}`
              writeFileSync(f, v.data)
              lastWritten.set(b.name, v.data)
              holding.add(`${b.name}:perm`)
            } else expect(existsSync(f) && readFileSync(f, 'utf8') === v.data, `data of ${b.name} lost`)
          }
        } else if (b.op === 'unmount' && v) {
          v.holders.delete(b.id ?? '')
        } else if (b.op === 'remove' && v) {
          expect(v.holders.size > 0 ? /in use/.test(String(reply.Err)) : reply.Err === undefined, `remove ${b.name} with ${v.holders.size} holders: ${JSON.stringify(reply)}`)
          if (v.holders.size === 0) model.delete(b.name)
        }
      })
      if (r() < 0.1) {
        await kill9()
        restarts++
        await start()
      }
      for (const name of names) {
        const v = model.get(name)
        const got = await post(socket, '/VolumeDriver.Get', { Name: name })
        if (!v) {
          expect(/no pvdisk volume/.test(String(got.Err)), `${name} should not exist: ${JSON.stringify(got)}`)
          continue
        }
        const status = (got.Volume as { Status?: { mounts?: number } } | undefined)?.Status
        expect(status?.mounts === v.holders.size, `${name}: ${status?.mounts} holders, the model says ${v.holders.size}`)
        if (v.persistence === 'boot') expect(mountinfo().includes(` ${tmpfsOf(name)} `) === v.holders.size > 0, `${name}: tmpfs ${v.holders.size > 0 ? 'dropped' : 'leaked'}`)
      }
    }
    t.equal(mismatches, 0, `${ops} operations, ${restarts} kill -9 restarts: holders, Remove, tmpfs and data exactly as the model says`)
    t.ok(restarts >= 3, `${restarts} restarts`)
    t.ok(followed >= 10 && refused >= 10, `${followed} volumes created again elsewhere took their data along; ${refused} Creates as boot refused`)
  } finally {
    await kill9()
    unmountUnder(dir)
  }
})
