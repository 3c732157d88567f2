#!/usr/bin/env node
// `npm start`: pvdisk's main job, end to end, on a scratch root that is removed afterwards.
// As root on Linux: installs what it lacks (apt-get: busybox-static, runc, and cryptsetup
// where device-mapper exists), declares a disk (dm-crypt-versatile where the kernel has
// device-mapper, else a directory disk), brings it up, runs a real runc container whose
// OCI hook is pvdisk's, lets it write to /data, and shows the file at its place on the disk.
// Not root, or not Linux: one line says what is missing, then it validates and plans the
// example state instead. Nothing here touches the host outside its scratch directory.
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = fileURLToPath(new URL('../', import.meta.url))
const cli = join(repo, 'dist/pvdisk.cjs')
const hookClient = join(repo, 'dist/pvdisk-hook')
const say = line => process.stdout.write(`${line}\n`)
const run = (argv, opts = {}) => spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 120_000, ...opts })
const has = tool => run(['sh', '-c', 'command -v "$1"', 'sh', tool]).status === 0
const pvdisk = (args, show = true) => {
  if (show) say(`\n$ pvdisk ${args.join(' ')}`)
  const r = run([process.execPath, cli, ...args])
  if (show) process.stdout.write(r.stdout + r.stderr)
  return r
}

/** not root or not Linux: what can be shown without mounting anything */
const validateAndPlan = reason => {
  say(`demo: ${reason}; validating and planning the example state instead (nothing is changed)`)
  const state = join(repo, 'examples/state')
  const v = pvdisk(['validate', state])
  pvdisk(['plan', '--state', state, '--root', '/tmp/pvdisk-example-root'])
  process.exitCode = v.status ?? 1
}

const deviceMapper = () => existsSync('/dev/mapper/control') && run(['dmsetup', 'targets']).status === 0

/** apt-get install what is missing; returns the tools still missing afterwards */
const install = (tools) => {
  const missing = tools.filter(([tool]) => !has(tool))
  if (missing.length > 0 && has('apt-get')) {
    const packages = [...new Set(missing.map(([, pkg]) => pkg))]
    say(`demo: installing ${packages.join(' ')} (apt-get)`)
    run(['apt-get', 'update', '-qq'], { stdio: 'ignore', timeout: 600_000 })
    run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: 'ignore', timeout: 600_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  }
  return tools.filter(([tool]) => !has(tool)).map(([tool, pkg]) => `${tool} (apt-get install ${pkg})`)
}

const busyboxRootfs = rootfs => {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find(p => existsSync(p))
  for (const d of ['bin', 'tmp', 'etc', 'proc', 'sys', 'dev', 'data']) mkdirSync(join(rootfs, d), { recursive: true })
  copyFileSync(busybox, join(rootfs, 'bin/busybox'))
  for (const a of ['sh', 'echo', 'date', 'cat', 'grep', 'hostname']) symlinkSync('busybox', join(rootfs, 'bin', a))
}

const demo = (dir, crypt) => {
  const state = join(dir, 'state')
  const root = join(dir, 'root')
  mkdirSync(join(state, 'web'), { recursive: true })
  mkdirSync(root)
  const disk = crypt
    ? { name: 'secure', type: 'dm-crypt-versatile', path: '/storage/dm-crypt-files/secure/versatile.img,16,versatile_key' }
    : { name: 'secure', type: 'volume-disk' }
  writeFileSync(join(state, 'device.json'), `${JSON.stringify({ groups: [{ name: 'app' }], disks: [disk] }, null, '\t')}\n`)
  writeFileSync(join(state, 'web/src.json'), `${JSON.stringify({ '#spec': 'service-manifest-src@1', docker_name: 'local/busybox', persistence: { '/data': 'permanent@secure', '/tmp': 'boot' } }, null, '\t')}\n`)
  say(`demo: a state in ${state} with one ${crypt ? 'encrypted (dm-crypt-versatile)' : 'directory (no device-mapper in this kernel)'} disk and one app, web, whose /data is permanent@secure`)
  pvdisk(['validate', state])
  pvdisk(['plan', '--state', state, '--root', root])
  if (pvdisk(['disk', 'up', '--state', state, '--root', root]).status !== 0) throw new Error('disk up failed')

  // a runc bundle: busybox made offline, pvdisk's hook at createRuntime, the app named by annotations
  const bundle = join(dir, 'bundle')
  busyboxRootfs(join(bundle, 'rootfs'))
  run(['runc', 'spec', '--bundle', bundle])
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'))
  config.process.terminal = false
  config.process.args = ['sh', '-c', 'echo "written by container $(hostname) at $(date)" > /data/hello.txt; grep " /data " /proc/mounts']
  config.root.readonly = false
  config.annotations = { 'io.pvdisk.state': state, 'io.pvdisk.app': 'web', 'io.pvdisk.root': root }
  const hook = stage => ({ path: hookClient, args: ['pvdisk-hook', 'oci', '--stage', stage], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `PVDISK_NODE=${process.execPath}`], timeout: 60 })
  config.hooks = { createRuntime: [hook('createRuntime')], poststop: [hook('poststop')] }
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config, null, 2))
  say(`\n$ runc run pvdisk-demo   # the container writes /data/hello.txt`)
  const c = run(['runc', '--root', join(dir, 'runc'), 'run', '--bundle', bundle, `pvdisk-demo-${process.pid}`])
  process.stdout.write(c.stdout + c.stderr)
  if (c.status !== 0) throw new Error('the container failed')

  const file = join(root, 'media/pv/dmcrypt/secure/perm/web/docker--data/hello.txt')
  say(`\nOn the disk, at ${file}:`)
  process.stdout.write(readFileSync(file, 'utf8'))
  if (crypt) {
    const image = readFileSync(join(root, 'storage/dm-crypt-files/secure/versatile.img'))
    say(`and the disk image holds ${image.includes('written by container') ? 'the text in plaintext (unexpected!)' : 'no plaintext of it: it is encrypted'}`)
  }
  pvdisk(['disk', 'down', '--state', state, '--root', root])
}

const main = () => {
  if (process.platform !== 'linux') return validateAndPlan(`the demo needs Linux (this is ${process.platform})`)
  if (process.getuid?.() !== 0) return validateAndPlan('the demo mounts a disk and runs a container, which needs root (run: sudo npm start)')
  const missing = install([['busybox', 'busybox-static'], ['runc', 'runc'], ['mount', 'mount']])
  if (missing.length > 0) return validateAndPlan(`missing ${missing.join(', ')}`)
  let crypt = deviceMapper()
  if (crypt && install([['cryptsetup', 'cryptsetup-bin'], ['dmsetup', 'dmsetup'], ['losetup', 'mount']]).length > 0) crypt = false
  const dir = mkdtempSync(join(tmpdir(), 'pvdisk-demo-'))
  chmodSync(dir, 0o755)
  try {
    demo(dir, crypt)
    say(`\ndemo: done; removing ${dir}`)
  } catch (e) {
    say(`demo: ${e.message}`)
    process.exitCode = 1
  } finally {
    run([process.execPath, cli, 'disk', 'down', '--state', join(dir, 'state'), '--root', join(dir, 'root')])
    const points = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map(l => l.split(' ')[4] ?? '').filter(p => p.startsWith(`${dir}/`)).reverse()
    for (const p of points) run(['umount', '-l', '--', p])
    rmSync(dir, { recursive: true, force: true })
  }
}

main()
