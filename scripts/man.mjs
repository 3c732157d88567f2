// Writes dist/pvdisk.1, the man page, from the built CLI's own --help output: the same
// command definitions, so the page never disagrees with `pvdisk --help`.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'

const cli = new URL('../dist/pvdisk.cjs', import.meta.url).pathname
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
// a fixed width and no terminal: the page is the same on every machine
const help = (...args) => execFileSync(process.execPath, [cli, ...args, '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '78' } }).trimEnd()

/** roff: a backslash is \e, and a line may not start with a dot or an apostrophe */
const roff = text => text.replace(/\\/g, '\\e').split('\n').map(l => (/^[.']/.test(l) ? `\\&${l}` : l)).join('\n')

const top = help()
const commands = [...top.matchAll(/^ {2}pvdisk (\S+)/gm)].map(m => m[1]).filter(c => c !== 'completion')
const page = [
  `.TH PVDISK 1 "" "pvdisk ${pkg.version}" "User Commands"`,
  '.SH NAME',
  `pvdisk \\- ${roff(pkg.description)}`,
  '.SH SYNOPSIS',
  '.B pvdisk',
  '\\fIcommand\\fR [\\fIoptions\\fR]',
  '.SH DESCRIPTION',
  '.nf',
  roff(top),
  '.fi',
  '.SH COMMANDS',
  ...commands.flatMap(c => ['.SS', `pvdisk ${c}`, '.nf', roff(help(c)), '.fi']),
  '.SH EXIT STATUS',
  '0 success; 1 an operation failed; 2 invalid input or usage (nothing was changed).',
  '.SH SEE ALSO',
  'pvdisk-hook, pvdisk-oci-hook and pvdisk-lxc-hook (each answers \\-\\-help); the README.',
  '',
].join('\n')
writeFileSync(new URL('../dist/pvdisk.1', import.meta.url), page)
