#!/usr/bin/env node
// The OCI hook as its own small program (dist/pvdisk-oci-hook.cjs): runtimes call it on
// every container start, so it skips the CLI's argument parser and loads only what the
// hook needs. Usage, as a hook entry: pvdisk-oci-hook [--stage createRuntime|poststop]
import { readFileSync } from 'node:fs'
import { failureReport } from '../../config/problems.js'
import { ociHook } from './hook.js'

const args = process.argv.slice(2)
const USAGE = `usage: pvdisk-oci-hook [--stage createRuntime|prestart|poststop]
An OCI runtime hook: it reads the container's state JSON on stdin, and mounts the volumes of
the app its annotations name (io.pvdisk.state, io.pvdisk.app; io.pvdisk.root, io.pvdisk.revision).
pvdisk oci-hook --hooks-d DIR writes hooks.d files for podman and CRI-O.
`
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE)
  process.exit(0)
}
const at = args.indexOf('--stage')
const stage = at >= 0 ? args[at + 1] ?? '' : 'createRuntime'
// no top-level await: the program is a CommonJS bundle, run from V8's code cache (scripts/bundle.mjs)
// (reading stdin inside the chain: a failed read is reported like any failure, exit status and all)
Promise.resolve().then(() => ociHook(stage, readFileSync(0, 'utf8'))).then(lines => { // stdin, at once: the OCI state is small
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`)
}, (thrown: unknown) => {
  const { text, exitCode } = failureReport(thrown, 'oci-hook')
  process.stderr.write(text)
  process.exitCode = exitCode
})
