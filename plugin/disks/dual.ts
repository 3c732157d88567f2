// dual (Pantavisor's disk_dual.c): two sub-disks, primary first, and init_order's actions
// tried in order until one succeeds: "primary" and "secondary" mount a sub-disk that exists,
// "create-primary" and "create-secondary" also create it, and "copy-once-to-primary" copies
// the secondary's content onto a (new) primary once. The winner is mounted at its own place
// and bind-mounted at the dual's, where the dual's volumes live. The copy is compared entry
// by entry and byte for byte, synced, and only then marked done, in
// <root>/var/lib/pvdisk/dual_<primary>_<secondary>.init_done: persistent, unlike Pantavisor's
// marker under /run, which a reboot forgets so that the copy would run again over newer data.
import { existsSync } from 'node:fs'
import type { DiskEntry } from '../config/check-device.js'
import { errorSaid, PvdiskError } from '../errors.js'
import { writeFileAtomicSync } from '../host/atomic-write.js'
import { isBindOf, mountAt } from '../host/kernel.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import { copyVerified } from '../host/tree-copy.js'
import { act, fsUsage, hostPath, lockDirOf, mountPointOf, type Backend, type DiskContext, type DiskStatus } from './context.js'
import { acquireLock } from './lock.js'

export const dualMarkerOf = (ctx: DiskContext, disk: DiskEntry): string =>
  hostPath(ctx, `/var/lib/pvdisk/dual_${(disk.subDisks ?? []).map(d => d.name).join('_')}.init_done`)

const steps = (disk: DiskEntry): string[] => (Array.isArray(disk.fields.init_order) ? disk.fields.init_order.filter((s): s is string => typeof s === 'string') : [])

interface Dual {
  ctx: DiskContext
  disk: DiskEntry
  subs: DiskEntry[]
  mnt: string
  sub: (i: number) => { d: DiskEntry, b: Backend }
  bind: (d: DiskEntry) => Promise<void>
}

const dualOf = (ctx: DiskContext, disk: DiskEntry, backendOf: (d: DiskEntry) => Backend | undefined): Dual => {
  const subs = disk.subDisks ?? []
  const mnt = mountPointOf(ctx, disk)
  return {
    ctx, disk, subs, mnt,
    sub: (i: number) => {
      const d = subs[i]
      const b = d && backendOf(d)
      if (!d || !b) throw new PvdiskError('EINVALID', `dual disk "${disk.name}" has no ${i === 0 ? 'primary' : 'secondary'} sub-disk pvdisk can provision`)
      return { d, b }
    },
    bind: async (d: DiskEntry) => {
      act.mkdirp(ctx, mnt)
      await ctx.runner.run({ argv: ['mount', '--bind', '--', mountPointOf(ctx, d), mnt] })
    },
  }
}

/** a sub-disk up (created only when allowed), then bound at the dual's place */
const mountSub = async (x: Dual, i: number, create: boolean): Promise<string> => {
  const { d, b } = x.sub(i)
  if (!create && b.status().state === 'absent') throw new PvdiskError('EDISK', `"${d.name}" does not exist yet`)
  await b.up()
  await x.bind(d)
  return `mounted ${i === 0 ? 'primary' : 'secondary'} "${d.name}"`
}

/** the secondary's content onto the primary, proven, synced, then marked; undefined when it was done before */
const copyOnce = async (x: Dual): Promise<string | undefined> => {
  const { ctx, disk } = x
  const marker = dualMarkerOf(ctx, disk)
  if (existsSync(marker)) return undefined // done once: the next action mounts the primary
  const primary = x.sub(0)
  const secondary = x.sub(1)
  if (secondary.b.status().state === 'absent') throw new PvdiskError('EDISK', `the secondary "${secondary.d.name}" does not exist, nothing to copy`)
  await secondary.b.up()
  await primary.b.up()
  const to = mountPointOf(ctx, primary.d)
  const diff = await copyVerified(ctx.runner, mountPointOf(ctx, secondary.d), to)
  if (diff) throw new PvdiskError('EDISK', `the copy of "${secondary.d.name}" onto "${primary.d.name}" is not exact (${diff})`)
  await ctx.runner.run({ argv: ['sync', '-f', '--', to] })
  ctx.runner.note(`mark the copy done: ${marker}`)
  if (!ctx.runner.planning) {
    mkdirNoFollow(ctx.root, hostPath(ctx, '/var/lib/pvdisk'), 0o700)
    writeFileAtomicSync(marker, '', 0o644)
  }
  await secondary.b.down()
  await x.bind(primary.d)
  return `copied secondary "${secondary.d.name}" onto primary "${primary.d.name}" and mounted it`
}

const tryStep = (x: Dual, step: string): Promise<string | undefined> => {
  switch (step) {
    case 'primary': return mountSub(x, 0, false)
    case 'secondary': return mountSub(x, 1, false)
    case 'create-primary': return mountSub(x, 0, true)
    case 'create-secondary': return mountSub(x, 1, true)
    case 'copy-once-to-primary': return copyOnce(x)
    default: throw new PvdiskError('EINVALID', `unknown init_order action "${step}"`)
  }
}

export const dualBackend = (ctx: DiskContext, disk: DiskEntry, backendOf: (d: DiskEntry) => Backend | undefined): Backend => {
  const x = dualOf(ctx, disk, backendOf)
  const { subs, mnt } = x
  const winner = (): DiskEntry | undefined => {
    const mounts = ctx.kernel.mounts()
    const at = mountAt(mounts, mnt)
    return at && subs.find(s => isBindOf(at, mounts, mountPointOf(ctx, s)))
  }
  const status = (): DiskStatus => {
    const w = winner()
    const base = { name: disk.name, type: disk.type, mountPoint: mnt, backing: w ? `${w.name} (${subs[0] === w ? 'primary' : 'secondary'})` : subs.map(s => s.name).join(', '), problems: [] as string[] }
    if (w) return { ...base, state: 'mounted', ...fsUsage(mnt) }
    const at = mountAt(ctx.kernel.mounts(), mnt)
    if (at) return { ...base, state: 'provisioned', problems: [`${mnt} is mounted from something else (${at.source}${at.root})`] }
    return { ...base, state: subs.some(s => backendOf(s)?.status().state !== 'absent') ? 'provisioned' : 'absent' }
  }
  return {
    tools: () => ['mount', 'umount', 'cp', 'sync', ...subs.flatMap(s => backendOf(s)?.tools() ?? [])],
    mountSpec: () => ({ source: mountPointOf(ctx, winner() ?? subs[0] ?? disk), target: mnt, fsType: 'none', options: ['bind'] }),
    status,
    up: async () => {
      const s = status()
      if (s.state === 'mounted') return `already mounted (${s.backing})`
      if (s.problems.length > 0) throw new PvdiskError('EDISK', `disk "${disk.name}": ${s.problems.join('; ')}`, [`unmount ${mnt} first`])
      const locks = await Promise.all(subs.map(d => d.name).sort().map(n => (ctx.runner.planning ? undefined : acquireLock(lockDirOf(ctx), n))))
      const failed: string[] = []
      try {
        for (const step of steps(disk)) {
          try {
            const done = await tryStep(x, step)
            if (done !== undefined) return done
            failed.push(`${step}: already done`)
          } catch (e) {
            failed.push(`${step}: ${errorSaid(e).split('\n')[0]}`)
            ctx.log(`dual "${disk.name}": ${step} failed: ${errorSaid(e).split('\n')[0]}`)
          }
        }
      } finally {
        for (const l of locks) l?.release()
      }
      throw new PvdiskError('EDISK', `dual disk "${disk.name}": no init_order action succeeded (${failed.join('; ') || 'none given'})`, ['each sub-disk can be brought up on its own with pvdisk disk up NAME to see why'])
    },
    down: async () => {
      const w = winner()
      if (mountAt(ctx.kernel.mounts(), mnt)) {
        if (!w) throw new PvdiskError('EDISK', `disk "${disk.name}": ${status().problems.join('; ')}`, ['leaving it alone'])
        await ctx.runner.run({ argv: ['umount', '--', mnt] })
        act.removeMountPoint(ctx, mnt)
      }
      for (const s of subs) if (backendOf(s)?.status().state === 'mounted') await backendOf(s)?.down()
      return w ? `unmounted (was ${w.name})` : 'not mounted'
    },
  }
}

/** sub-disks that a mounted dual disk shows at its own place: their content is the dual's (gc and usage count it once) */
export const servingDuals = (ctx: DiskContext, disks: Iterable<DiskEntry>): Set<string> => {
  const mounts = ctx.kernel.mounts()
  const out = new Set<string>()
  for (const d of disks) {
    const at = d.type === 'dual' ? mountAt(mounts, mountPointOf(ctx, d)) : undefined
    for (const s of at ? d.subDisks ?? [] : []) if (at && isBindOf(at, mounts, mountPointOf(ctx, s))) out.add(s.name)
  }
  return out
}
