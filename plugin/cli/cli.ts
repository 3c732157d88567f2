#!/usr/bin/env node
// Layer cli/ (the top; docs/architecture.md): the pvdisk command line, one file per
// command under commands/. Handlers return data; this file is the only place that prints
// results, catches errors and picks the exit status: 0 success, 1 an operation failed,
// 2 invalid input or usage.
import yargs, { type Argv } from 'yargs'
import { hideBin } from 'yargs/helpers'
import { resolve } from 'node:path'
import { exitStatusOf, fromSystemError, isPvdiskError, PvdiskError } from '../errors.js'
import { errorText, type Problem } from '../config/problems.js'
import type { CommandResult, GlobalOptions } from './cli-types.js'
import * as validate from './commands/validate.js'
import * as app from './commands/app.js'
import * as disk from './commands/disk.js'
import * as plan from './commands/plan.js'
import * as up from './commands/up.js'
import * as down from './commands/down.js'
import * as serve from './commands/serve.js'
import * as usage from './commands/usage.js'
import * as gc from './commands/gc.js'
import * as ociHook from './commands/oci-hook.js'
import * as volumes from './commands/volumes.js'
import * as sign from './commands/sign.js'
import * as verity from './commands/verity.js'
import * as migrate from './commands/migrate.js'
import { PVDISK_VERSION } from './version.js'

type Handler<A> = (argv: A) => Promise<CommandResult>

const emit = (json: boolean, result: CommandResult): void => {
  if (json) process.stdout.write(JSON.stringify(result.data, null, 2) + '\n')
  else if (result.lines.length > 0) process.stdout.write(result.lines.join('\n') + '\n')
  process.exitCode = result.exitCode
}

const fail = (argv: string[], thrown: unknown): void => {
  const json = argv.includes('--json')
  const debug = argv.includes('--debug')
  const e = fromSystemError(thrown) ?? thrown // ENOSPC, EIO, ...: the machine's word, not a bug
  if (debug && e !== thrown) process.stderr.write(`${(thrown as Error).stack ?? ''}\n`)
  if (isPvdiskError(e)) {
    const problems = (e as PvdiskError & { problems?: Problem[] }).problems ?? []
    if (json) {
      process.stdout.write(JSON.stringify({ ok: false, error: { code: e.code, message: e.message, details: e.details, problems } }, null, 2) + '\n')
    } else {
      process.stderr.write(errorText(e, problems))
    }
    if (debug) process.stderr.write(`${e.stack ?? ''}\n`)
    process.exitCode = exitStatusOf(e.code)
    return
  }
  const err = e as Error
  if (json) process.stdout.write(JSON.stringify({ ok: false, error: { code: 'EBUG', message: `unexpected error: ${err?.message ?? String(e)}`, details: [], problems: [] } }, null, 2) + '\n')
  process.stderr.write(`pvdisk: unexpected error: ${err?.message ?? String(e)}\n`)
  process.stderr.write(debug ? `${err?.stack ?? ''}\n` : '  run again with --debug for details, and report it as a bug\n')
  process.exitCode = 1
}

/** the secure-boot flags go to the environment, where hooks and their children find them too */
const securebootFromArgv = (argv: { trust?: string, secureboot?: string, oemName?: string, allowDowngrade?: boolean }): void => {
  if (argv.trust !== undefined) process.env.PVDISK_TRUST = resolve(argv.trust)
  if (argv.secureboot !== undefined) process.env.PVDISK_SECUREBOOT = argv.secureboot
  if (argv.oemName !== undefined) process.env.PVDISK_OEM_NAME = argv.oemName
  if (argv.allowDowngrade) process.env.PVDISK_ALLOW_DOWNGRADE = '1'
}

const wrap = <A>(handler: Handler<A>) => async (argv: A & GlobalOptions) => emit(argv.json, await handler(argv))

export const main = async (args: string[]): Promise<void> => {
  try {
    const cli: Argv<GlobalOptions> = yargs(args)
      .scriptName('pvdisk')
      .usage('$0 <command> [options]\n\nPantavisor disks and persistence for any Linux host that runs containers.')
      .option('state', { type: 'string', default: '.', describe: 'state directory holding device.json', global: true })
      .option('root', { type: 'string', default: '/', describe: 'resolve every host path under this directory', global: true })
      .option('json', { type: 'boolean', default: false, describe: 'machine-readable output', global: true })
      .option('debug', { type: 'boolean', default: false, describe: 'stack traces on errors', global: true })
      .option('trust', { type: 'string', describe: 'pvs trust store (ca-certificates.crt, ca-oem-certificates.crt, pub.pem): act only on states Pantavisor would accept (env PVDISK_TRUST)', global: true })
      .option('secureboot', { type: 'string', choices: ['disabled', 'audit', 'lenient', 'strict'], describe: 'Pantavisor\'s secure-boot mode for signed states (default with --trust: lenient; env PVDISK_SECUREBOOT)', global: true })
      .option('oem-name', { type: 'string', describe: 'the OEM whose certificates ca-oem-certificates.crt holds (env PVDISK_OEM_NAME)', global: true })
      .option('allow-downgrade', { type: 'boolean', describe: 'apply a state older than the one applied (root only; logged; env PVDISK_ALLOW_DOWNGRADE=1)', global: true })
      .middleware(securebootFromArgv)
    await cli
      .command(validate.command, validate.describe, validate.builder, wrap(validate.handler))
      .command(app.command, app.describe, app.builder, wrap(app.handler))
      .command(sign.command, sign.describe, sign.builder, wrap(sign.handler))
      .command(disk.command, disk.describe, disk.builder, wrap(disk.handler))
      .command(disk.status.command, disk.status.describe, disk.status.builder, wrap(disk.status.handler))
      .command(plan.command, plan.describe, plan.builder, wrap(plan.handler))
      .command(up.command, up.describe, up.builder, wrap(up.handler))
      .command(down.command, down.describe, down.builder, wrap(down.handler))
      .command(serve.command, serve.describe, serve.builder, wrap(serve.handler))
      .command(usage.command, usage.describe, usage.builder, wrap(usage.handler))
      .command(gc.command, gc.describe, gc.builder, wrap(gc.handler))
      .command(ociHook.command, ociHook.describe, ociHook.builder, wrap(ociHook.handler))
      .command(volumes.command, volumes.describe, volumes.builder, wrap(volumes.handler))
      .command(verity.command, verity.describe, verity.builder, wrap(verity.handler))
      .command(migrate.command, migrate.describe, migrate.builder, wrap(migrate.handler))
      .completion('completion', 'print a bash or zsh completion script (by $SHELL): pvdisk completion >> ~/.bashrc')
      .strict()
      .demandCommand(1, 'name a command; see pvdisk --help')
      .recommendCommands()
      .fail((msg, err) => {
        throw err ?? new PvdiskError('EUSAGE', msg ?? 'invalid usage', ['see pvdisk --help'])
      })
      .help()
      .version(PVDISK_VERSION)
      // yargs renders (and caches) the whole help before every command's handler: wrapping it costs
      // ~13 ms that only --help uses, so only --help wraps (usage errors print no help)
      .wrap(args.includes('--help') || args.includes('-h') ? Math.min(100, process.stdout.columns ?? 100) : null)
      .parseAsync()
  } catch (e) {
    fail(args, e)
  }
}

// No top-level await: the CLI is a CommonJS bundle run from V8's code cache (scripts/bundle.mjs).
// Once the command is done the process exits at once, not after tearing its heap down (~20 ms
// of every command); standard output and error are written synchronously on Linux.
const args = hideBin(process.argv)
main(args).catch((e: unknown) => fail(args, e)).then(() => process.exit())
