// `pvdisk oci-hook`: an OCI runtime hook (runc, crun; podman and CRI-O through hooks.d).
// At createRuntime, in the runtime namespace before pivot_root, it resolves the
// container's volumes and bind-mounts them into its root filesystem inside its mount
// namespace. Annotations say which app it is:
//   io.pvdisk.state     the state directory (required)
//   io.pvdisk.app       the app in that state (required)
//   io.pvdisk.root      --root (default /)
//   io.pvdisk.revision  the revision for "revision" volumes (default PVDISK_REVISION, else 0)
// A failure exits non-zero with one line on stderr, and the runtime aborts the start.
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InvalidInputError } from '../../config/problems.js'
import { hostPath, liveKernel, mountPointOf, type DiskContext, type MountSpec } from '../../disks/context.js'
import { mountAt, parseMountinfo } from '../../host/kernel.js'
import { backendFor, disksUp, isProvisionedByPvdisk } from '../../disks/engine.js'
import { guardStateVersion } from '../../disks/version-counter.js'
import { verityMountSpec, verityUp } from '../../disks/verity.js'
import { PvdiskError } from '../../errors.js'
import { ProcessRunner, type Runner } from '../../host/run.js'
import { appProblems, checkApp, requireStateDevice, type AppState } from '../../config/state.js'
import { nameError } from '../../config/path-rules.js'
import { followVolumes, knownPlacements, refuseIntoBoot } from '../../volumes/migrate.js'
import { appVolumes, currentRevision, emptyBootVolume, mkdirBelow, overlayLayersOf, prepareVolume } from '../../volumes/volumes.js'
import { writeFileAtomic } from '../../host/atomic-write.js'
import { withFstab } from '../../host/fstab.js'

export interface OciState {
  id: string
  pid?: number
  bundle: string
  annotations?: Record<string, string>
}

/**
 * The hook mounts into the container's mount namespace. If that is the host's own (a
 * wrong wiring: the hook run at a stage where the container has none yet, or from a
 * runtime shim), or cannot be told, it refuses rather than mount volumes onto the host.
 */
export const refuseHostNamespace = (pid: number): void => {
  let theirs: string
  let ours: string
  try {
    theirs = readlinkSync(`/proc/${pid}/ns/mnt`)
    ours = readlinkSync('/proc/self/ns/mnt')
  } catch (e) {
    throw new PvdiskError('EUSAGE', `oci-hook: cannot tell the mount namespace of process ${pid} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); refusing to mount`,
      ['run the hook at createRuntime (or prestart), where the container process exists'])
  }
  if (theirs === ours) {
    throw new PvdiskError('EUSAGE', `oci-hook: process ${pid} shares the host's mount namespace (${ours}); refusing to mount volumes into the host`,
      ['run the hook at createRuntime (or prestart) from the OCI runtime, not from a shim in the host namespace'])
  }
}

export const parseOciState = (text: string): OciState => {
  let s: unknown
  try {
    s = JSON.parse(text)
  } catch {
    throw new PvdiskError('EUSAGE', 'oci-hook: stdin is not the OCI state JSON', ['run pvdisk oci-hook from a runtime hook'])
  }
  const o = s as Partial<OciState>
  if (typeof o?.id !== 'string' || typeof o.bundle !== 'string') throw new PvdiskError('EUSAGE', 'oci-hook: the OCI state has no id or bundle')
  return o as OciState
}

const rootfsOf = (bundle: string): string => {
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { root?: { path?: string } }
  const p = config.root?.path ?? 'rootfs'
  return isAbsolute(p) ? p : join(bundle, p)
}

/** where the hook runs: its environment and cwd (relative annotations mean the hook's cwd), and how it runs commands */
export interface HookCaller {
  runner?: Runner
  env?: NodeJS.ProcessEnv
  cwd?: string
}

export const ociHook = async (stage: string, stdin: string, caller: HookCaller = {}): Promise<string[]> => {
  const { runner = new ProcessRunner(), env = process.env, cwd = process.cwd() } = caller
  const state = parseOciState(stdin)
  const a = state.annotations ?? {}
  const stateDir = a['io.pvdisk.state'] ? resolve(cwd, a['io.pvdisk.state']) : undefined
  const appName = a['io.pvdisk.app']
  if (stage === 'poststop') {
    // the bind mounts lived in the container's mount namespace and went with it; disks stay up for others
    return [`${state.id}: released`]
  }
  if (stage !== 'createRuntime' && stage !== 'prestart') throw new PvdiskError('EUSAGE', `oci-hook: stage ${stage} is not supported`, ['use createRuntime (or prestart) and poststop'])
  if (!stateDir || !appName) return [`${state.id}: no io.pvdisk.state/io.pvdisk.app annotations, nothing to mount`]
  if (typeof state.pid !== 'number') throw new PvdiskError('EUSAGE', 'oci-hook: the OCI state has no pid')
  refuseHostNamespace(state.pid)
  // device.json and this app only: a hook must not pay for every other app of the state
  const bad = nameError(appName, 'app')
  if (bad) throw new PvdiskError('EUSAGE', `io.pvdisk.app ${JSON.stringify(appName)}: ${bad.message}`)
  const { device, disks: index } = await requireStateDevice(stateDir)
  const app = await checkApp(stateDir, appName, index)
  const problems = [...device.problems.list, ...appProblems(app)]
  const errors = problems.filter(p => p.severity === 'error')
  if (errors.length > 0) throw new InvalidInputError(`${stateDir}: ${errors.length} error(s); not starting ${state.id}`, problems)
  if (!app?.storage) throw new PvdiskError('EINVALID', `app "${appName}" is not in ${stateDir} (or has no src.json)`, ['check the io.pvdisk.app annotation'])
  const loaded = { disks: index }
  const ctx: DiskContext = { root: resolve(cwd, a['io.pvdisk.root'] ?? '/'), runner, kernel: liveKernel, log: () => undefined }
  const revision = currentRevision(a['io.pvdisk.revision'], env)
  const volumes = appVolumes(app, loaded.disks).filter(v => v.containerPath !== undefined)
  const disks = [...new Map(volumes.flatMap(v => (v.disk && isProvisionedByPvdisk(v.disk) ? [[v.disk.name, v.disk] as const] : []))).values()]
  const known = knownPlacements(ctx, [appName])
  refuseIntoBoot(ctx, index, volumes, revision, known) // before any disk comes up
  await guardStateVersion(ctx, stateDir)
  await disksUp(ctx, disks)
  await followVolumes(ctx, index, volumes, revision, known)
  // runc made the container's mount namespace before this hook ran: a disk mounted just now
  // (or whose mount does not propagate) is missing there, so it is mounted there the same way.
  // Everything goes into one fstab, applied in order by a single mount inside the namespace.
  const theirs = parseMountinfo(readFileSync(`/proc/${state.pid}/mountinfo`, 'utf8'))
  const entries: MountSpec[] = []
  for (const disk of disks) {
    const backend = backendFor(ctx, disk)
    if (backend && !mountAt(theirs, mountPointOf(ctx, disk))) entries.push(backend.mountSpec())
  }
  const rootfs = rootfsOf(state.bundle)
  const out: string[] = []
  for (const v of volumes) {
    const target = v.containerPath ?? ''
    // the image's own tree: create the mount point without following its symlinks
    mkdirBelow(rootfs, target.split('/').filter(Boolean))
    const inside = join(rootfs, target)
    const src = prepareVolume(ctx, v, revision)
    emptyBootVolume(ctx, v, revision) // createRuntime: this container is starting
    if (v.overlay && src.kind === 'dir') {
      // ovl: the image's own content at that path is the lower layer; changes go to the volume
      if (/[,:\\\s]/.test(inside)) throw new PvdiskError('EDISK', `${inside}: an overlay's lower directory cannot contain a comma, colon, backslash or space`)
      const { upper, work } = overlayLayersOf(ctx, src.path)
      entries.push({ source: 'overlay', target: inside, fsType: 'overlay', options: [`lowerdir=${inside}`, `upperdir=${upper}`, `workdir=${work}`] })
      out.push(`${state.id}: ${target} <- overlay of the image's ${target} with ${upper}`)
      continue
    }
    entries.push(src.kind === 'dir'
      ? { source: src.path, target: inside, fsType: 'none', options: ['bind'] }
      : { source: 'pvdisk-boot', target: inside, fsType: 'tmpfs', options: ['mode=0755'] })
    out.push(`${state.id}: ${target} <- ${src.kind === 'dir' ? src.path : 'tmpfs'}`)
  }
  await verityInto(ctx, app, rootfs, state.id, entries, out)
  if (entries.length === 0) return out
  await withFstab(ctx.root, hostPath(ctx, '/run/pvdisk/hooks'), state.id, entries, fstab =>
    runner.run({ argv: ['nsenter', `--target=${state.pid}`, '--mount', '--', 'mount', '--all', '--fstab', fstab] }))
  return out
}

/**
 * Verity volumes that PV_VOLUME_MOUNTS places in the container: verified and mounted on the
 * host (Pantavisor's /volumes/<app>/<volume>), and their mapping mounted read-only inside.
 */
const verityInto = async (ctx: DiskContext, app: AppState, rootfs: string, id: string, entries: MountSpec[], out: string[]): Promise<void> => {
  for (const v of app.verity ?? []) {
    if (v.containerPath === undefined) continue
    await verityUp(ctx, v)
    mkdirBelow(rootfs, v.containerPath.split('/').filter(Boolean))
    entries.push(verityMountSpec(v, join(rootfs, v.containerPath)))
    out.push(`${id}: ${v.containerPath} <- verity volume ${v.name} (read-only)`)
  }
}

/** a program of dist/ (the hook program, the fast path's client), next to this module bundled or not */
const distProgram = (name: string): string => {
  // bundled, this module is dist/pvdisk.bundle.cjs (or a hook bundle); built but not bundled, dist/runtimes/oci/hook.js
  const bundled = fileURLToPath(new URL(`./${name}`, import.meta.url))
  const unbundled = fileURLToPath(new URL(`../../${name}`, import.meta.url))
  return existsSync(bundled) || !existsSync(unbundled) ? bundled : unbundled
}

export const hookProgram = (): string => distProgram('pvdisk-oci-hook.cjs')

/** sh + curl: hands the hook to `pvdisk serve`, else runs hookProgram() */
export const hookClient = (): string => distProgram('pvdisk-hook')

/**
 * hooks.d 1.0.0 files for podman and CRI-O: createRuntime and poststop, for annotated
 * containers. They run the fast path's client, which asks `pvdisk serve` on socket (its
 * default when not given) and falls back to the hook program with this very Node.
 */
export const writeHooksD = async (dir: string, socket?: string): Promise<string[]> => {
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new PvdiskError('EUSAGE', `--hooks-d ${dir}: no such directory`, [`create it first (mkdir -p ${dir}), or name podman's hooks.d, e.g. /etc/containers/oci/hooks.d`])
  }
  const files: string[] = []
  for (const stage of ['createRuntime', 'poststop']) {
    const file = join(dir, `pvdisk-${stage.toLowerCase()}.json`)
    const body = {
      version: '1.0.0',
      hook: {
        path: hookClient(),
        args: ['pvdisk-hook', ...(socket !== undefined ? ['--socket', socket] : []), 'oci', '--stage', stage],
        // a hook's env replaces the runtime's: the client needs curl on PATH, and this Node to fall back on
        // (and the secure-boot settings this command ran with, so that the hook refuses what it would)
        env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `PVDISK_NODE=${process.execPath}`,
          ...['PVDISK_TRUST', 'PVDISK_SECUREBOOT', 'PVDISK_OEM_NAME'].filter(k => process.env[k]).map(k => `${k}=${process.env[k]}`)],
        timeout: 120,
      },
      when: { annotations: { '^io\\.pvdisk\\.app$': '.+' } },
      stages: [stage],
    }
    await writeFileAtomic(file, JSON.stringify(body, null, 2) + '\n', 0o644)
    files.push(file)
  }
  return files
}
