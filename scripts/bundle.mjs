// Bundles the CLI into dist/pvdisk.mjs: one file starts much faster than ~100 ESM modules
// (yargs alone costs ~50 ms of module loading unbundled; see bench/validate.mjs).
import { build } from 'esbuild'
import { chmodSync, copyFileSync } from 'node:fs'

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
  // dockerode pulls in ssh2 and optional native modules: loaded from node_modules, only by commands that need Docker
  external: ['dockerode'],
  alias: { 'string-width': new URL('./string-width-ascii.mjs', import.meta.url).pathname },
  // CommonJS dependencies inside an ESM bundle need a require
  banner: { js: "import { createRequire as pvdiskCreateRequire } from 'node:module'; const require = pvdiskCreateRequire(import.meta.url);" },
  ...extra,
  })
  chmodSync(outfile, 0o755)
}

await bundle('cli/cli.js', 'pvdisk.mjs')
// the OCI hook runs on every container start: its own small bundle, without the CLI
await bundle('runtimes/oci/main.js', 'pvdisk-oci-hook.mjs', { minify: true, keepNames: true }) // less to parse at every start
// the LXC hook too: LXC runs it at every container start
await bundle('runtimes/lxc/main.js', 'pvdisk-lxc-hook.mjs', { minify: true, keepNames: true })
// the hooks' fast path: a POSIX sh client that hands the work to `pvdisk serve`, else runs the hook programs
const client = new URL('../dist/pvdisk-hook', import.meta.url).pathname
copyFileSync(new URL('../plugin/cli/pvdisk-hook.sh', import.meta.url).pathname, client)
chmodSync(client, 0o755)
