// The app's lxc.container.conf as pvr's builtin-lxc-docker template writes it (pantacor/pvr
// templates/builtin-lxc-docker.go): one lxc.mount.entry per persistence entry, a bind from
// /volumes/<app>/<volume> for a plain path and an overlay over the image's own content for an
// ovl: path, in the order of the template's map (keys sorted), lxc-overlay left to the
// rootfs line. app install replaces pvr's previous entries and keeps every other line.
import type { Json } from './json-source.js'
import { isJsonObject } from './json-source.js'
import { LXC_OVERLAY, volumeNameOf, type PersistenceKey } from './persistence.js'

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

/** the map key pvr ranges over: the src.json key without its trailing "/" */
const templateKey = (k: PersistenceKey): string => `${k.overlay ? 'ovl:' : ''}${k.path}`

export const mountEntriesOf = (app: string, keys: Iterable<PersistenceKey>): string[] =>
  [...keys].filter(k => k.path !== LXC_OVERLAY).sort((a, b) => byteOrder(templateKey(a), templateKey(b))).map(k => {
    const vol = `/volumes/${app}/${volumeNameOf(k)}`
    const target = k.path.replace(/^\//, '')
    return k.overlay
      ? `lxc.mount.entry = ${vol} ${target} overlay lowerdir=/volumes/${app}/root.squashfs/${target},upperdir=${vol}/upper,workdir=${vol}/work,create=dir 0 0`
      : `lxc.mount.entry = ${vol} ${target} none bind,rw,create=dir 0 0`
  })

/** pvr's own volume entries: /volumes/<app>/docker-... or dockerovl-... (other mount entries are not ours) */
const isVolumeEntry = (line: string, app: string): boolean =>
  new RegExp(`^lxc\\.mount\\.entry\\s*=\\s*/volumes/${app.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/docker(ovl)?-`).test(line)

/** the config with pvr's volume entries replaced by entries, where the first of them stood */
export const withMountEntries = (text: string, app: string, entries: string[]): string => {
  const lines = text.split('\n')
  const final = text.endsWith('\n') ? lines.pop() : undefined
  const first = lines.findIndex(l => isVolumeEntry(l, app))
  const kept = lines.filter(l => !isVolumeEntry(l, app))
  const lastMount = kept.reduce((at, l, i) => (/^lxc\.mount\.entry\s*=/.test(l) ? i : at), -1)
  const at = first >= 0 ? first : lastMount >= 0 ? lastMount + 1 : kept.length
  kept.splice(at, 0, ...entries)
  return kept.join('\n') + (final !== undefined ? '\n' : '')
}

const quoted = (xs: Json[]): string => xs.map(x => ` "${String(x)}"`).join('')

/** the template's lxc.init.cmd from the image config (Entrypoint, then Cmd; /sbin/init without either) */
const initCmdOf = (entrypoint: Json | undefined, cmd: Json | undefined): string => {
  if (Array.isArray(entrypoint) && entrypoint.length > 0) {
    const rest = Array.isArray(cmd) ? quoted(cmd) : typeof cmd === 'string' && cmd ? ` "${cmd}"` : ''
    return ` ${String(entrypoint[0])}${quoted(entrypoint.slice(1))}${rest}`
  }
  if (typeof entrypoint === 'string' && entrypoint) return ` ${entrypoint}`
  if (Array.isArray(cmd) && cmd.length > 0) return ` ${String(cmd[0])}${quoted(cmd.slice(1))}`
  if (typeof cmd === 'string' && cmd) return ` ${cmd}`
  return ' /sbin/init'
}

/**
 * A new app's config, as the template writes it with no args: terminals, devices, the rootfs
 * overlay, the init command, working directory and environment from the image config
 * (docker_config, overridden by src.json config), namespaces, automatic mounts, resolv.conf,
 * /run, and the volume entries. Networking, capabilities and the other PV_* args stay pvr's.
 */
export const newLxcConf = (app: string, src: { [key: string]: Json }, keys: Iterable<PersistenceKey>): string => {
  const image = isJsonObject(src.docker_config) ? src.docker_config : {}
  const over = isJsonObject(src.config) ? src.config : {}
  const docker = (k: string): Json | undefined => (over[k] ?? null) !== null ? over[k] : image[k]
  const env = docker('Env')
  const cwd = docker('WorkingDir')
  return [
    'lxc.tty.max = 8', 'lxc.pty.max = 1024', 'lxc.cgroup.devices.allow = a',
    `lxc.rootfs.path = overlayfs:/volumes/${app}/root.squashfs:/volumes/${app}/lxc-overlay/upper`,
    `lxc.init.cmd =${initCmdOf(docker('Entrypoint'), docker('Cmd'))}`,
    ...(typeof cwd === 'string' && cwd !== '' ? [`lxc.init.cwd = ${cwd}`] : []),
    ...(Array.isArray(env) ? env.map(e => `lxc.environment = ${String(e)}`) : []),
    'lxc.namespace.keep = user net ipc', 'lxc.mount.auto = proc sys:rw cgroup',
    'lxc.mount.entry = /etc/resolv.conf etc/resolv.conf none bind,rw,create=file 0 0',
    'lxc.mount.entry = tmpfs run tmpfs rw,nodev,relatime,create=dir,mode=755 0 0',
    ...mountEntriesOf(app, keys),
  ].join('\n') + '\n'
}
