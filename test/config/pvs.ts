// Signed states end to end: keys and certificates made here with openssl (a CA, a signing
// certificate, an OEM CA and certificate), signatures by `pvdisk sign` and by an independent
// route (the payload built by hand, signed by openssl), verified by `pvdisk validate` in each
// mode, and refused before anything is touched by the commands that act on a state.
import t, { type Test } from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { json } from '../fixtures/helpers.js'

const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))
const ssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })

/** a CA and a leaf it signs; EC keys when curve is given */
const pki = (dir: string, name: string, cn: string, caCn: string, curve?: string): void => {
  const keyArgs = (out: string) => (curve ? ['ecparam', '-name', curve, '-genkey', '-noout', '-out', out] : ['genrsa', '-out', out, '2048'])
  ssl(keyArgs(`${name}-ca.key`), dir)
  ssl(['req', '-x509', '-new', '-key', `${name}-ca.key`, '-subj', `/CN=${caCn}`, '-days', '30', '-out', `${name}-ca.crt`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], dir)
  ssl(keyArgs(`${name}.key`), dir)
  ssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`], dir)
  ssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${name}-ca.crt`, '-CAkey', `${name}-ca.key`, '-CAcreateserial', '-days', '30', '-out', `${name}.crt`], dir)
}

const makeState = (dir: string) => {
  mkdirSync(join(dir, 'state/web'), { recursive: true })
  mkdirSync(join(dir, 'state/bsp'), { recursive: true })
  writeFileSync(join(dir, 'state/device.json'), json({ groups: [{ name: 'app' }], disks: [{ name: 'data', type: 'volume-disk' }] }))
  writeFileSync(join(dir, 'state/web/src.json'), json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@data' } }))
  writeFileSync(join(dir, 'state/web/run.json'), json({ '#spec': 'service-manifest-run@1', name: 'web', storage: { 'docker--data': { persistence: 'permanent', disk: 'data' } }, ratio: 1.5 }))
  writeFileSync(join(dir, 'state/web/root.squashfs'), Buffer.from([0, 1, 2, 0xff, 10, 13]))
  writeFileSync(join(dir, 'state/bsp/run.json'), json({ addons: [], initrd: 'pantavisor', linux: 'kernel.img' }))
  writeFileSync(join(dir, 'state/bsp/kernel.img'), 'not really a kernel')
}

const setup = (t: Test) => {
  const dir = t.testdir({ trust: {}, oemtrust: {} })
  pki(dir, 'dev', 'pv-test-signer', 'Test Root CA')
  pki(dir, 'oem', 'acme', 'Acme OEM Root', 'secp384r1')
  pki(dir, 'evil', 'pv-test-signer', 'Evil Root CA')
  writeFileSync(join(dir, 'trust/ca-certificates.crt'), readFileSync(join(dir, 'dev-ca.crt')))
  writeFileSync(join(dir, 'trust/ca-oem-certificates.crt'), readFileSync(join(dir, 'oem-ca.crt')))
  makeState(dir)
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' })
    return { status: r.status, out: r.stdout + r.stderr }
  }
  const state = join(dir, 'state')
  const sign = (name: string, who: 'dev' | 'oem' | 'evil', extra: string[] = []) =>
    run(['sign', name, '--state', state, '--key', join(dir, `${who}.key`), '--x5c', join(dir, `${who}.crt`), ...extra])
  const validate = (mode: string, extra: string[] = []) => run(['validate', state, '--trust', join(dir, 'trust'), '--secureboot', mode, ...extra])
  return { dir, state, run, sign, validate }
}

t.test('pvdisk sign: a fully signed state is accepted in every mode; what each refusal looks like', async t => {
  const { dir, state, sign, validate, run } = setup(t)
  t.equal(sign('web', 'dev').status, 0)
  t.equal(sign('bsp', 'dev').status, 0)
  t.equal(validate('strict').status, 2, 'strict: #spec and device.json are not covered yet')
  t.match(validate('strict').out, /device\.json is not covered by any signature/)
  t.equal(validate('lenient').status, 0, 'lenient: every signature verifies')
  const audit = validate('audit')
  t.equal(audit.status, 0, 'audit: uncovered entries are reported, not refused')
  t.match(audit.out, /warning \[state-uncovered\].*device\.json/)
  const core = sign('core', 'dev', ['--raw', '--include', '#spec', '--include', 'device.json'])
  t.equal(core.status, 0, core.out)
  t.match(core.out, /2 entries signed\n {2}#spec\n {2}device\.json/)
  t.equal(validate('strict').status, 0, 'strict: fully covered and valid')
  const { symlinkSync } = await import('node:fs')
  symlinkSync(state, join(dir, 'current'))
  t.equal(run(['validate', join(dir, 'current'), '--trust', join(dir, 'trust'), '--secureboot', 'strict']).status, 0, 'a state reached through a link (trails/current) is read')
  symlinkSync('/etc/passwd', join(state, 'web/passwd'))
  t.match(validate('strict').out, /web\/passwd is a symbolic link: a signed state holds files only/, 'a link inside a signed state is refused')
  spawnSync('rm', [join(state, 'web/passwd')])
  const sig = JSON.parse(readFileSync(join(state, '_sigs/web.json'), 'utf8'))
  const header = JSON.parse(Buffer.from(sig.protected, 'base64url').toString())
  t.same(Object.keys(header), ['alg', 'jwk', 'pvs', 'typ', 'x5c'], 'the header as go-jose writes it')
  t.same(header.pvs, { include: ['web/**', '_config/web/**'], exclude: ['web/src.json', '_sigs/web.json'] }, 'pvr sig add\'s globs for a part')
  t.equal(readFileSync(join(state, '_sigs/web.json'), 'utf8'), `{"#spec":"pvs@2","protected":"${sig.protected}","signature":"${sig.signature}"}`, 'canonical JSON, as pvr writes it')

  appendFileSync(join(state, 'web/root.squashfs'), 'x')
  let r = validate('strict')
  t.equal(r.status, 2)
  t.match(r.out, /_sigs\/web\.json: the signature does not verify over its 2 entries; Pantavisor \(strict\) refuses the state: Signature validation failed/)
  t.equal(validate('audit').status, 2, 'audit refuses an invalid signature too, as Pantavisor does (it forgives only what is uncovered)')
  t.equal(validate('lenient').status, 2)
  t.equal(validate('disabled').status, 0)
  t.equal(sign('web', 'dev').status, 0, 'signed again')
  writeFileSync(join(state, 'web/extra.conf'), 'added after signing')
  t.equal(validate('strict').status, 2, 'a file inside a signature\'s include changes its payload')
  r = validate('strict')
  t.match(r.out, /_sigs\/web\.json: the signature does not verify/)
  mkdirSync(join(state, 'other'))
  writeFileSync(join(state, 'other/run.json'), '{}')
  t.equal(sign('web', 'dev').status, 0)
  r = validate('strict')
  t.equal(r.status, 2)
  t.match(r.out, /other\/run\.json is not covered by any signature/)
  t.equal(validate('lenient').status, 0, 'lenient ignores what no signature covers')
  spawnSync('rm', ['-rf', join(state, 'other')])
  t.equal(validate('strict').status, 0)

  t.equal(sign('web', 'evil').status, 0)
  r = validate('strict')
  t.equal(r.status, 2)
  t.match(r.out, /_sigs\/web\.json: its certificate CN=pv-test-signer does not chain to a trusted certificate/)
  t.equal(sign('web', 'dev').status, 0)
  const good = JSON.parse(readFileSync(join(state, '_sigs/web.json'), 'utf8'))
  const edited = Buffer.from(Buffer.from(good.protected, 'base64url').toString().replace('"web/src.json",', '')).toString('base64url')
  writeFileSync(join(state, '_sigs/web.json'), JSON.stringify({ ...good, protected: edited }))
  r = validate('strict')
  t.equal(r.status, 2, 'a header edit is refused')
  t.match(r.out, /_sigs\/web\.json: the signature does not verify/)
  t.equal(sign('web', 'dev').status, 0)
  t.ok(existsSync(join(dir, 'trust/ca-certificates.crt')))
})

t.test('OEM signatures: accepted with --oem-name for an app, refused over bsp/**', async t => {
  const { state, sign, validate } = setup(t)
  t.equal(sign('bsp', 'dev').status, 0)
  t.equal(sign('core', 'dev', ['--raw', '--include', '#spec', '--include', 'device.json']).status, 0)
  t.equal(sign('web', 'oem').status, 0, 'an ES384 key')
  t.equal(JSON.parse(Buffer.from(JSON.parse(readFileSync(join(state, '_sigs/web.json'), 'utf8')).protected, 'base64url').toString()).alg, 'ES384')
  t.equal(validate('strict', ['--oem-name', 'acme']).status, 0, 'the OEM store verifies the OEM\'s app')
  t.equal(validate('strict').status, 2, 'without --oem-name the OEM certificate is checked against the main store')
  t.equal(sign('bsp', 'oem').status, 0)
  const r = validate('strict', ['--oem-name', 'acme'])
  t.equal(r.status, 2, 'an OEM may not sign bsp/**')
  t.match(r.out, /_sigs\/bsp\.json: its certificate CN=acme does not chain/)
})

t.test('an independent signature (payload by hand, openssl) verifies; pvdisk\'s payload is the same bytes', async t => {
  const { dir, state, sign, validate } = setup(t)
  t.equal(sign('bsp', 'dev').status, 0)
  t.equal(sign('core', 'dev', ['--raw', '--include', '#spec', '--include', 'device.json']).status, 0)
  // web/** less web/src.json, as canonical JSON by hand: sorted keys, no spaces; 1.5 is 1.5E0
  const sha = execFileSync('sha256sum', [join(state, 'web/root.squashfs')], { encoding: 'utf8' }).split(' ')[0]
  const run = '{"#spec":"service-manifest-run@1","name":"web","ratio":1.5E0,"storage":{"docker--data":{"disk":"data","persistence":"permanent"}}}'
  const payload = `{"web/root.squashfs":"${sha}","web/run.json":${run}}`
  const cert = readFileSync(join(dir, 'dev.crt'), 'latin1').replace(/-----[A-Z ]+-----|\s/g, '')
  const jwk = JSON.parse(execFileSync(process.execPath, ['-e', `process.stdout.write(JSON.stringify(require('crypto').createPublicKey(require('fs').readFileSync(${JSON.stringify(join(dir, 'dev.key'))})).export({format:'jwk'})))`], { encoding: 'utf8' }))
  const header = `{"alg":"RS256","jwk":{"kty":"RSA","n":"${jwk.n}","e":"${jwk.e}"},"pvs":{"include":["web/**"],"exclude":["web/src.json","_sigs/web.json"]},"typ":"PVS","x5c":["${cert}"]}`
  const prot = Buffer.from(header).toString('base64url')
  writeFileSync(join(dir, 'input'), `${prot}.${Buffer.from(payload).toString('base64url')}`)
  const signature = ssl(['dgst', '-sha256', '-sign', join(dir, 'dev.key'), join(dir, 'input')], dir).toString('base64url')
  mkdirSync(join(state, '_sigs'), { recursive: true })
  writeFileSync(join(state, '_sigs/web.json'), JSON.stringify({ '#spec': 'pvs@2', protected: prot, signature }))
  const r = validate('strict')
  t.equal(r.status, 0, `openssl's signature over the hand-made payload verifies: ${r.out}`)
  t.equal(sign('web', 'dev', ['--noconfig']).status, 0)
  const mine = JSON.parse(readFileSync(join(state, '_sigs/web.json'), 'utf8'))
  t.equal(mine.protected, prot, 'the same header bytes')
  t.equal(mine.signature, signature, 'RSA PKCS#1 v1.5 is deterministic: the same payload gives the same signature bytes')
})

t.test('the commands that act on a state refuse a tampered one before touching anything', async t => {
  const { dir, state, sign, run } = setup(t)
  for (const part of ['web', 'bsp']) t.equal(sign(part, 'dev').status, 0)
  t.equal(sign('core', 'dev', ['--raw', '--include', '#spec', '--include', 'device.json']).status, 0)
  writeFileSync(join(state, 'device.json'), json({ groups: [{ name: 'app' }], disks: [{ name: 'data', type: 'directory', path: '/elsewhere' }] }))
  const root = join(dir, 'root')
  mkdirSync(root)
  const trust = ['--trust', join(dir, 'trust'), '--secureboot', 'strict']
  for (const args of [['disk', 'up'], ['plan'], ['volumes', 'up', 'web'], ['disk', 'status'], ['up']]) {
    const r = run([...args, '--state', state, '--root', root, ...trust])
    t.equal(r.status, 2, `${args.join(' ')}: exit 2`)
    t.match(r.out, /_sigs\/core\.json: the signature does not verify/, `${args.join(' ')}: names the entry and the reason`)
  }
  t.same(readdirSync(root), [], 'nothing created')
  const env = { ...process.env, PVDISK_TRUST: join(dir, 'trust'), PVDISK_SECUREBOOT: 'strict' }
  const r = spawnSync(process.execPath, [cli, 'plan', '--state', state, '--root', root], { encoding: 'utf8', env })
  t.equal(r.status, 2, 'the environment (hooks, the daemon) applies the same settings')
  writeFileSync(join(dir, 'serve.json'), json({ secureboot: { mode: 'strict', trust: join(dir, 'trust') } }))
  const serve = spawnSync(process.execPath, [cli, 'serve', '--socket', `/tmp/pvdisk-pvs-${process.pid}.sock`, '--config', join(dir, 'serve.json'), '--state', state, '--root', root], { encoding: 'utf8', timeout: 30_000 })
  t.equal(serve.status, 2, 'serve with secure-boot settings in its config file refuses to start on it')
  t.match(serve.stderr, /_sigs\/core\.json: the signature does not verify/)
  const bad = run(['validate', state, '--secureboot', 'strict'])
  t.equal(bad.status, 2)
  t.match(bad.out, /needs a trust store/)
})

t.test('a state version must be signed to count', async t => {
  const { state, sign, validate } = setup(t)
  for (const part of ['web', 'bsp']) t.equal(sign(part, 'dev').status, 0)
  writeFileSync(join(state, 'pvdisk.json'), json({ '#spec': 'pvdisk-state@1', version: 7 }))
  t.equal(sign('core', 'dev', ['--raw', '--include', '#spec', '--include', 'device.json']).status, 0)
  let r = validate('lenient')
  t.equal(r.status, 2)
  t.match(r.out, /pvdisk\.json is in no valid signature's payload/)
  t.equal(sign('core', 'dev', ['--raw', '--include', '#spec', '--include', 'device.json', '--include', 'pvdisk.json']).status, 0)
  r = validate('strict')
  t.equal(r.status, 0, r.out)
})
