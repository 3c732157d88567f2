// Bundles the CLI and the two hook programs, each into one file run from V8's code cache
// (scripts/cached-program.mjs): one file starts much faster than ~100 ESM modules (yargs alone
// costs ~50 ms of module loading unbundled), and the cache saves compiling it (bench/validate.mjs).
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { loaderText } from './cached-program.mjs'

// the Docker client is its own bundle (dist/pvdisk-docker.cjs, below), required only by the commands
// that talk to Docker: in the CLI's bundle, its module is a stub that requires it from dist/
const dockerApart = {
  name: 'docker-apart',
  setup: b => {
    b.onResolve({ filter: /runtimes\/docker\/docker\.js$/ }, () => ({ path: 'docker', namespace: 'docker-apart' }))
    b.onLoad({ filter: /.*/, namespace: 'docker-apart' }, () => ({ contents: "module.exports = require('./pvdisk-docker.cjs')", loader: 'js' }))
    b.onResolve({ filter: /^\.\/pvdisk-docker\.cjs$/ }, () => ({ path: './pvdisk-docker.cjs', external: true }))
  },
}

const bundle = async (entry, out, extra = {}) => {
  const outfile = new URL(`../dist/${out}`, import.meta.url).pathname
  await build({
  entryPoints: [new URL(`../dist/${entry}`, import.meta.url).pathname],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  alias: { 'string-width': new URL('./string-width-ascii.mjs', import.meta.url).pathname },
  plugins: [dockerApart],
  // CommonJS dependencies inside an ESM bundle need a require
  banner: { js: "import { createRequire as pvdiskCreateRequire } from 'node:module'; const require = pvdiskCreateRequire(import.meta.url);" },
  ...extra,
  })
  chmodSync(outfile, 0o755)
}

const commonJs = {
  format: 'cjs',
  banner: { js: "const pvdiskImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': 'pvdiskImportMetaUrl' },
}

// dockerode with docker-modem, bundled; what they load at start for ssh:// and image builds, which
// pvdisk never uses, is a stub (unused-transport.cjs): 200+ ms less for every pvdisk up and down
await bundle('runtimes/docker/docker.js', 'pvdisk-docker.cjs', {
  ...commonJs,
  plugins: [],
  alias: Object.fromEntries(['ssh2', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs'].map(m => [m, new URL('./unused-transport.cjs', import.meta.url).pathname])),
})

/** dist/<name>.bundle.cjs with its code cache, and its loaders dist/<name>.cjs and .mjs */
const cachedProgram = async (entry, name, extra = {}, prelude = '') => {
  await bundle(entry, `${name}.bundle.cjs`, { ...commonJs, ...extra })
  const code = new URL(`../dist/${name}.bundle.cjs`, import.meta.url).pathname
  const text = readFileSync(code, 'utf8')
  // a script run from vm.Script has no module loader: an import() would fail only when it runs
  if (/\bimport\(/.test(text)) throw new Error(`${code}: holds an import(); require it, or import it statically`)
  writeFileSync(code, text.replace(/^#!/, '//')) // run inside a function: no #! line
  chmodSync(code, 0o644)
  execFileSync(process.execPath, [new URL('./code-cache.mjs', import.meta.url).pathname, code], { stdio: 'inherit' })
  writeLoaders(name, prelude)
}

const writeLoaders = (name, prelude) => {
  for (const esm of [false, true]) {
    const loader = new URL(`../dist/${name}.${esm ? 'mjs' : 'cjs'}`, import.meta.url).pathname
    writeFileSync(loader, loaderText(name, esm, prelude))
    chmodSync(loader, 0o755)
  }
}

// the command, dist/pvdisk.cjs (and dist/pvdisk.mjs): --version and --help answered without
// loading the CLI (they are what a new user runs first, and scripts run --version often)
await cachedProgram('cli/cli.js', 'pvdisk')
{
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  const help = execFileSync(process.execPath, [new URL('../dist/pvdisk.cjs', import.meta.url).pathname, '--help'], { encoding: 'utf8' }) // not a terminal: yargs' 100 columns
  writeLoaders('pvdisk', `const args = process.argv.slice(2)
if (args.length === 1 && args[0] === '--version') process.stdout.write(${JSON.stringify(`${version}\n`)})
else if (args.length === 1 && args[0] === '--help' && !(process.stdout.columns < 100)) process.stdout.write(${JSON.stringify(help)})
else `)
}
// The OCI and LXC hooks run at every container start: each is a small program of its own,
// without the CLI, minified (less to read), so that compiling it was a quarter of the hook's
// own time before it ran from the code cache.
await cachedProgram('runtimes/oci/main.js', 'pvdisk-oci-hook', { minify: true, keepNames: true })
await cachedProgram('runtimes/lxc/main.js', 'pvdisk-lxc-hook', { minify: true, keepNames: true })
// the hooks' fast path: a POSIX sh client that hands the work to `pvdisk serve`, else runs the hook programs
const client = new URL('../dist/pvdisk-hook', import.meta.url).pathname
copyFileSync(new URL('../plugin/cli/pvdisk-hook.sh', import.meta.url).pathname, client)
chmodSync(client, 0o755)
