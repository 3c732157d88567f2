// The health check: every disk pvdisk brought up is still mounted from the right source
// with its mapping active; drift is remounted where that is safe, and volumes mounted into
// containers whose directory vanished from the disk are reported.
import { lstatSync } from 'node:fs'
import type { DiskEntry, DiskIndex } from '../config/check-device.js'
import { mountPointOf, type DiskContext } from '../disks/context.js'
import { backendFor, disksUp } from '../disks/engine.js'
import { readExpected } from '../disks/expected.js'
import { verityStatuses } from '../disks/verity.js'
import { mountAt } from '../host/kernel.js'
import { allNamespaceMounts } from './gc.js'

export interface HealthItem {
  disk: string
  ok: boolean
  repaired: boolean
  problem?: string
  /** a volume mounted into a container, when the item is about one */
  volume?: string
}

/** volumes of this disk mounted into containers (any mount namespace) whose directory is gone from the disk */
const vanishedVolumes = (ctx: DiskContext, disk: DiskEntry): string[] => {
  const mnt = mountPointOf(ctx, disk)
  const host = ctx.kernel.mounts()
  const own = mountAt(host, mnt)
  if (!own) return []
  const gone: string[] = []
  for (const table of allNamespaceMounts()) {
    for (const m of table) {
      if (m.major !== own.major || m.minor !== own.minor || m.root === own.root) continue
      const prefix = own.root === '/' ? '' : own.root
      if (!m.root.startsWith(`${prefix}/`)) continue
      const rel = m.root.slice(prefix.length).replace(/\/\/deleted$/, '') // a removed directory shows as //deleted
      if (!/^\/(perm|boot|rev)\//.test(rel)) continue
      const path = `${mnt}${rel}`
      if (!lstatSync(path, { throwIfNoEntry: false })?.isDirectory() && !gone.includes(path)) gone.push(path)
    }
  }
  return gone
}

/** every disk expected up is mounted from the right source (and its mapping active); drift is remounted where safe */
export const checkHealth = async (ctx: DiskContext, index: DiskIndex): Promise<HealthItem[]> => {
  const out: HealthItem[] = []
  for (const name of readExpected(ctx)) {
    const disk: DiskEntry | undefined = index.disks.get(name)
    const backend = disk && backendFor(ctx, disk)
    if (!disk || !backend) {
      out.push({ disk: name, ok: false, repaired: false, problem: 'no longer declared in device.json' })
      continue
    }
    const s = backend.status()
    if (s.state === 'mounted') {
      out.push({ disk: name, ok: true, repaired: false })
      for (const v of vanishedVolumes(ctx, disk)) out.push({ disk: name, volume: v, ok: false, repaired: false, problem: `${v} is mounted into a container but no longer exists on the disk` })
      continue
    }
    if (s.problems.length > 0) {
      out.push({ disk: name, ok: false, repaired: false, problem: s.problems.join('; ') }) // something else took its place: never touched
      continue
    }
    try {
      await disksUp(ctx, [disk])
      out.push({ disk: name, ok: true, repaired: true, problem: `was ${s.state}, remounted at ${mountPointOf(ctx, disk)}` })
    } catch (e) {
      out.push({ disk: name, ok: false, repaired: false, problem: `${s.state}, and remounting failed: ${(e as Error).message}` })
    }
  }
  for (const v of await verityStatuses(ctx)) {
    if (v.health === 'corrupted') out.push({ disk: 'verity', volume: v.mountPoint ?? v.mapping, ok: false, repaired: false, problem: `verity volume ${v.app ?? ''}/${v.volume ?? v.mapping} is corrupted: a block did not match its hash (never repaired: restore the image)` })
  }
  return out
}

export const healthProm = (items: HealthItem[]): string =>
  ['# HELP pvdisk_disk_healthy Whether a disk expected up is mounted from the right source (1) or not (0).', '# TYPE pvdisk_disk_healthy gauge',
    ...items.filter(i => i.volume === undefined).map(i => `pvdisk_disk_healthy{disk="${i.disk.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"} ${i.ok && !items.some(v => v.volume !== undefined && v.disk === i.disk) ? 1 : 0}`),
    '# HELP pvdisk_disk_repairs_total Remounts done by the health check since pvdisk serve started.', '# TYPE pvdisk_disk_repairs_total counter',
  ].join('\n') + '\n'
