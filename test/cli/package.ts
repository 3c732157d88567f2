// The package as a user gets it: npm pack holds the programs, the man page, the systemd
// units and the example config; installed globally, its pvdisk prints the package's
// version, its man page is found by man, completion works, and pvdisk-hook finds its hook
// programs through npm's bin links. (Packed without scripts: dist/ is built already, and a
// rebuild would pull dist/ from under the tests running beside this one.)
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findInPath } from '../../plugin/host/run.js'
import { requirePrereq } from '../fixtures/prereq.js'
import { cacheAccepted } from '../fixtures/code-cache.js'

const repo = fileURLToPath(new URL('../../', import.meta.url))
const cli = join(repo, 'dist/pvdisk.cjs')
const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version
t.setTimeout(300_000)

t.test('completion for bash and zsh, from the command definitions', async t => {
  const bash = spawnSync(process.execPath, [cli, 'completion'], { encoding: 'utf8', env: { ...process.env, SHELL: '/bin/bash' } })
  t.equal(bash.status, 0)
  t.match(bash.stdout, /complete -o bashdefault -o default -F _pvdisk_yargs_completions pvdisk/)
  const zsh = spawnSync(process.execPath, [cli, 'completion'], { encoding: 'utf8', env: { ...process.env, SHELL: '/usr/bin/zsh' } })
  t.match(zsh.stdout, /compdef _pvdisk_yargs_completions pvdisk/)
  const words = spawnSync(process.execPath, [cli, '--get-yargs-completions', 'pvdisk', ''], { encoding: 'utf8' }).stdout.split('\n')
  for (const c of ['validate', 'disk', 'up', 'serve', 'volumes']) t.ok(words.includes(c), `completes ${c}`)
})

t.test('--version and --help answered without loading the CLI say what the CLI says', async t => {
  const cliItself = join(repo, 'dist/pvdisk.bundle.cjs') // the CLI's bundle runs as a CommonJS module too, without the launcher
  const run = (program: string, arg: string) => spawnSync(process.execPath, [program, arg], { encoding: 'utf8', cwd: '/' })
  t.equal(run(cli, '--version').stdout, `${version}\n`)
  t.equal(run(cli, '--version').stdout, run(cliItself, '--version').stdout)
  t.equal(run(cli, '--help').stdout, run(cliItself, '--help').stdout, 'the same help, word for word')
})

t.test('the man page is made from --help and renders', async t => {
  const page = readFileSync(join(repo, 'dist/pvdisk.1'), 'utf8')
  t.match(page, new RegExp(`^\\.TH PVDISK 1 "" "pvdisk ${version.replace(/\./g, '\\.')}"`))
  for (const c of ['validate', 'app', 'disk', 'plan', 'up', 'down', 'serve', 'usage', 'gc', 'oci-hook', 'volumes']) t.match(page, `\n.SS\npvdisk ${c}\n`, `a section for ${c}`)
  const help = spawnSync(process.execPath, [cli, 'serve', '--help'], { encoding: 'utf8' }).stdout
  t.ok(page.includes(help.split('\n').find(l => l.includes('--socket')) ?? '--socket'), 'the same words as --help')
  if (!requirePrereq(t, findInPath('man') !== undefined, 'man is not installed (apt-get install man-db)')) return
  const shown = spawnSync('man', ['-l', join(repo, 'dist/pvdisk.1')], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '100', MAN_KEEP_FORMATTING: '0' } })
  t.equal(shown.status, 0, shown.stderr)
  t.match(shown.stdout, /pvdisk volumes <action>/)
})

t.test('npm pack, then a global install: the commands, the version, the man page', async t => {
  const dir = t.testdir({})
  const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: repo, encoding: 'utf8' })
  t.equal(packed.status, 0, packed.stderr)
  const [info] = JSON.parse(packed.stdout) as { filename: string, files: { path: string }[] }[]
  const files = (info?.files ?? []).map(f => f.path)
  for (const f of ['dist/pvdisk.mjs', 'dist/pvdisk.cjs', 'dist/pvdisk.bundle.cjs', 'dist/pvdisk.bundle.cjs.v8cache', 'dist/pvdisk-docker.cjs', 'dist/pvdisk-oci-hook.mjs', 'dist/pvdisk-lxc-hook.mjs', 'dist/pvdisk-oci-hook.cjs', 'dist/pvdisk-lxc-hook.cjs',
    'dist/pvdisk-oci-hook.bundle.cjs', 'dist/pvdisk-oci-hook.bundle.cjs.v8cache', 'dist/pvdisk-lxc-hook.bundle.cjs.v8cache', 'dist/pvdisk-hook', 'dist/pvdisk.1', 'systemd/pvdisk.service', 'systemd/pvdisk.socket', 'etc/pvdisk/pvdisk.conf', 'schemas/device.schema.json']) {
    t.ok(files.includes(f), `the package holds ${f}`)
  }
  t.notOk(files.some(f => f.startsWith('test/') || f.startsWith('plugin/')), 'and neither tests nor sources')
  const prefix = join(dir, 'prefix')
  // the dependencies come from npm's cache, filled by npm ci
  const install = spawnSync('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(dir, info?.filename ?? '')], { encoding: 'utf8', timeout: 240_000 })
  t.equal(install.status, 0, install.stderr)
  const bin = (name: string, args: string[], cwd = '/') => spawnSync(join(prefix, 'bin', name), args, { encoding: 'utf8', cwd })
  t.equal(bin('pvdisk', ['--version']).stdout.trim(), version, 'pvdisk --version prints the package version, from any directory')
  t.match(bin('pvdisk-hook', ['lxc', '--help']).stdout, /^usage: pvdisk-lxc-hook up\|down/, 'pvdisk-hook finds the hook program through npm\'s link')
  t.match(bin('pvdisk-oci-hook', ['--help']).stdout, /^usage: pvdisk-oci-hook/)
  for (const name of ['pvdisk', 'pvdisk-oci-hook', 'pvdisk-lxc-hook']) {
    t.ok(cacheAccepted(join(prefix, `lib/node_modules/pvdisk/dist/${name}.bundle.cjs`)), `installed from the package, ${name} runs from its code cache`)
  }
  if (!requirePrereq(t, findInPath('man') !== undefined, 'man is not installed (apt-get install man-db)')) return
  const where = spawnSync('man', ['-M', join(prefix, 'share/man'), '-w', 'pvdisk'], { encoding: 'utf8' })
  t.equal(where.status, 0, `man finds the installed page: ${where.stderr}`)
})
