// The hook programs run their bundle from V8's code cache made at build time
// (scripts/bundle.mjs, scripts/code-cache.mjs): this node accepts the cache, and a cache that
// cannot be used (older than its bundle, damaged, missing) only costs the compile: the
// program still runs, with the same output.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cacheAccepted } from '../fixtures/code-cache.js'

const dist = fileURLToPath(new URL('../../dist/', import.meta.url))

for (const name of ['pvdisk', 'pvdisk-oci-hook', 'pvdisk-lxc-hook']) {
  t.test(`${name}: run from its code cache; without a usable one it still runs`, async t => {
    t.ok(cacheAccepted(join(dist, `${name}.bundle.cjs`)), 'this node accepts the cache made at build time')
    const dir = t.testdir({})
    for (const f of [`${name}.cjs`, `${name}.mjs`, `${name}.bundle.cjs`, `${name}.bundle.cjs.v8cache`]) copyFileSync(join(dist, f), join(dir, f))
    // the CLI's own --help, not its launcher's copy: a second argument makes the launcher pass it on
    const help = (program: string) => spawnSync(process.execPath, [join(dir, program), '--help', ...(name === 'pvdisk' ? ['--json'] : [])], { encoding: 'utf8' })
    const expected = help(`${name}.cjs`)
    t.equal(expected.status, 0, expected.stderr)
    t.match(expected.stdout, name === 'pvdisk' ? /^pvdisk <command>/ : new RegExp(`^usage: ${name}`))
    t.same(help(`${name}.mjs`).stdout, expected.stdout, 'the .mjs program, for hook lines written before, does the same')

    const cache = join(dir, `${name}.bundle.cjs.v8cache`)
    const old = new Date(Date.now() - 60_000)
    utimesSync(cache, old, old)
    t.same(help(`${name}.cjs`).stdout, expected.stdout, 'a cache older than its bundle is not read')
    writeFileSync(cache, Buffer.from('not a code cache at all, just bytes'))
    const damaged = help(`${name}.cjs`)
    t.equal(damaged.status, 0, damaged.stderr)
    t.same(damaged.stdout, expected.stdout, 'a cache that is not one is rejected by V8, and the bundle compiled')
    rmSync(cache)
    t.same(help(`${name}.cjs`).stdout, expected.stdout, 'no cache: compiled')
  })
}
