#!/usr/bin/env node
// The OCI hook as its own small program (dist/pvdisk-oci-hook.mjs): runtimes call it on
// every container start, so it skips the CLI's argument parser and loads only what the
// hook needs. Usage, as a hook entry: pvdisk-oci-hook [--stage createRuntime|poststop]
import { exitStatusOf, fromSystemError, isPvdiskError } from '../../errors.js'
import { formatProblem, type Problem } from '../../config/problems.js'
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
try {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  const lines = await ociHook(stage, Buffer.concat(chunks).toString('utf8'))
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`)
} catch (thrown) {
  const e = fromSystemError(thrown) ?? thrown
  if (isPvdiskError(e)) {
    const problems = (e as { problems?: Problem[] }).problems ?? []
    process.stderr.write([...problems.filter(p => p.severity === 'error').map(formatProblem), `pvdisk: ${e.message}`, ...e.details.map(d => `  ${d}`)].join('\n') + '\n')
    process.exitCode = exitStatusOf(e.code)
  } else {
    process.stderr.write(`pvdisk: oci-hook: unexpected error: ${(e as Error).message}\n`)
    process.exitCode = 1
  }
}
