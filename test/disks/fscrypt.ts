// fscrypt vaults for real on the host: a loop-mounted ext4 made with -O encrypt, Google's
// fscrypt tool, Clevis against swtpm (a software TPM 2.0) and a real tang server, through
// the CLI. Key material must never show in any output.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findInPath } from '../../plugin/host/run.js'
import { json, unmountUnder } from '../fixtures/helpers.js'
import { flushTpm, startSwtpm, startTang } from '../fixtures/keyservers.js'
import { isRoot, requirePrereq } from '../fixtures/prereq.js'

t.setTimeout(600_000)
const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))

const prereqs = (t: Test): boolean =>
  requirePrereq(t, isRoot(), 'loop mounts need root') &&
  requirePrereq(t, ['fscrypt', 'clevis', 'swtpm', 'tpm2_pcrextend', 'socat', 'mkfs.ext4'].every(p => findInPath(p) !== undefined) && existsSync('/usr/libexec/tangd'),
    'fscrypt, clevis, clevis-tpm2, swtpm, tpm2-tools, tang and socat are needed (apt-get install fscrypt clevis clevis-tpm2 swtpm swtpm-tools tpm2-tools tang socat)')

/** a state with one vault, and a root whose /storage is a fresh ext4 with encryption enabled */
const vaultHost = (t: Test, unlock: unknown, apps: { [app: string]: { [file: string]: string } } = {}) => {
  const dir = t.testdir({ state: apps, root: { storage: {}, recovery: {} } })
  const image = join(dir, 'storage.img')
  spawnSync('truncate', ['-s', '64M', image])
  const mk = spawnSync('mkfs.ext4', ['-q', '-F', '-O', 'encrypt', image], { encoding: 'utf8' })
  if (mk.status !== 0) throw new Error(mk.stderr)
  const m = spawnSync('mount', ['-o', 'loop', image, join(dir, 'root/storage')], { encoding: 'utf8' })
  if (m.status !== 0) throw new Error(m.stderr)
  const write = (u: unknown) => writeFileSync(join(dir, 'state/device.json'), json({
    groups: [{ name: 'app' }],
    disks_v3: [{ name: 'vault', type: 'fscrypt', path: '/storage/vault', unlock: u, recovery_key: '/recovery/vault.key' }],
  }))
  write(unlock)
  const base = ['--state', join(dir, 'state'), '--root', join(dir, 'root')]
  const outputs: string[] = []
  const run = (args: string[], env: NodeJS.ProcessEnv = process.env, input?: Buffer) => {
    const r = spawnSync(process.execPath, [cli, ...args, ...base], { encoding: 'utf8', env, ...(input ? { input } : {}) })
    flushTpm(env)
    outputs.push(r.stdout, r.stderr)
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, out: r.stdout + r.stderr }
  }
  const vault = join(dir, 'root/storage/vault')
  const mnt = join(dir, 'root/media/pv/dmcrypt/vault')
  /** no key material in anything pvdisk printed */
  const noSecrets = () => {
    const secrets = [join(dir, 'root/recovery/vault.key'), `${vault}.key`].filter(existsSync).map(f => readFileSync(f))
    const shown = outputs.join('\n')
    for (const s of secrets) {
      t.notOk(shown.includes(s.toString('hex')) || shown.includes(s.toString('latin1')) || shown.includes(s.toString('base64')), 'no key material in the output')
    }
  }
  return { dir, image, run, vault, mnt, write, noSecrets, recoveryFile: join(dir, 'root/recovery/vault.key') }
}

const mountedAt = (mnt: string): boolean => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some(l => l.split(' ')[4] === mnt)

t.test('keyfile vault: first init, locked by down, data back on up, no plaintext on the filesystem', async t => {
  if (!prereqs(t)) return
  const h = vaultHost(t, 'keyfile')
  try {
    mkdirSync(h.vault)
    writeFileSync(join(h.vault, 'plain.txt'), 'not encrypted')
    let r = h.run(['disk', 'up'])
    t.equal(r.status, 1, 'a vault directory that holds unencrypted files is refused')
    t.match(r.out, /holds files that are not encrypted/)
    t.notOk(existsSync(`${h.vault}.key`) || existsSync(`${h.vault}.recovery`), 'and nothing was created')
    spawnSync('rm', ['-rf', h.vault])
    r = h.run(['disk', 'up'])
    t.equal(r.status, 0, r.out)
    t.equal(statSync(`${h.vault}.key`).mode & 0o777, 0o600)
    t.equal(statSync(h.recoveryFile).mode & 0o777, 0o600)
    t.match(readFileSync(h.recoveryFile, 'latin1'), /^[0-9a-f]{64}$/, 'the recovery key is 64 hex digits')
    t.ok(mountedAt(h.mnt), 'the unlocked vault is bound at the mount point')
    const status = JSON.parse(h.run(['disk', 'status', '--json']).stdout)
    t.match(status, [{ name: 'vault', type: 'fscrypt', state: 'mounted', unlock: 'keyfile', recovery: true }])
    t.match(h.run(['disk', 'status']).stdout, /unlock: keyfile; recovery key: yes/)
    const secret = `vault-payload-${process.pid}`
    writeFileSync(join(h.mnt, 'secret.txt'), secret)
    t.equal(h.run(['disk', 'up']).stdout.trim(), 'vault: already mounted')
    r = h.run(['disk', 'down'])
    t.equal(r.status, 0, r.out)
    t.match(r.stdout, /locked the vault/)
    t.notOk(mountedAt(h.mnt))
    t.notOk(readdirSync(h.vault).includes('secret.txt'), 'locked: names are encrypted')
    t.match(JSON.parse(h.run(['disk', 'status', '--json']).stdout), [{ state: 'provisioned' }])
    spawnSync('sync')
    t.notOk(readFileSync(h.image).includes(Buffer.from(secret)), 'no plaintext on the filesystem image')
    r = h.run(['disk', 'up'])
    t.equal(r.status, 0, r.out)
    t.equal(readFileSync(join(h.mnt, 'secret.txt'), 'utf8'), secret, 'data back after down and up')
    h.noSecrets()
  } finally {
    h.run(['disk', 'down'])
    unmountUnder(h.dir)
  }
})

t.test('tpm2 vault: bound to PCR 7; a changed PCR fails cleanly; recover re-binds; a wrong recovery key is refused', async t => {
  if (!prereqs(t)) return
  const h = vaultHost(t, { tpm2: { pcrs: '7' } })
  let env = process.env
  try {
    const tpm = await startSwtpm(t, h.dir)
    env = tpm.env
    let r = h.run(['disk', 'up'], tpm.env)
    t.equal(r.status, 0, r.out)
    t.notOk(existsSync(`${h.vault}.key`), 'no key file next to a TPM-bound vault')
    t.match(readFileSync(`${h.vault}.jwe`, 'utf8'), /^ey[A-Za-z0-9_-]+\./, 'the sealed key is a Clevis JWE')
    t.match(JSON.parse(h.run(['disk', 'status', '--json'], tpm.env).stdout), [{ unlock: 'tpm2 (PCR 7, sha256)', recovery: true }])
    writeFileSync(join(h.mnt, 'f'), 'kept')
    t.equal(h.run(['disk', 'down'], tpm.env).status, 0)
    t.equal(h.run(['disk', 'up'], tpm.env).status, 0, 'a reboot-equivalent (down, up) unlocks with the TPM')
    t.equal(h.run(['disk', 'down'], tpm.env).status, 0)
    tpm.extendPcr7()
    const jwe = readFileSync(`${h.vault}.jwe`)
    r = h.run(['disk', 'up'], tpm.env)
    t.equal(r.status, 1)
    t.match(r.stderr, /tpm2 \(PCR 7, sha256\): the TPM refuses to unseal: its PCRs no longer match/)
    t.match(r.stderr, /pvdisk disk recover vault/)
    t.notOk(mountedAt(h.mnt), 'a locked vault is never mounted')
    t.notOk(readdirSync(h.vault).includes('f'), 'and stays locked')
    r = h.run(['disk', 'up'], { ...tpm.env, TPM2TOOLS_TCTI: 'swtpm:host=127.0.0.1,port=1' })
    t.equal(r.status, 1)
    t.match(r.stderr, /no TPM answers/, 'an absent TPM is named as such')
    r = h.run(['disk', 'recover', 'vault'], tpm.env, Buffer.from('0'.repeat(64)))
    t.equal(r.status, 1)
    t.match(r.stderr, /not the recovery key of this vault/)
    t.same(readFileSync(`${h.vault}.jwe`), jwe, 'a wrong recovery key changes nothing')
    r = h.run(['disk', 'recover', 'vault', '--recovery-key', h.recoveryFile], tpm.env)
    t.equal(r.status, 0, r.out)
    t.match(r.stdout, /sealed the vault key again to tpm2 \(PCR 7, sha256\); mounted the vault/)
    t.equal(readFileSync(join(h.mnt, 'f'), 'utf8'), 'kept', 'data back after recovery')
    t.equal(h.run(['disk', 'down'], tpm.env).status, 0)
    t.equal(h.run(['disk', 'up'], tpm.env).status, 0, 'bound again to the new PCR values')
    h.noSecrets()
  } finally {
    h.run(['disk', 'down'], env)
    unmountUnder(h.dir)
  }
})

t.test('tang and sss vaults: tang unlocks while it runs, fails cleanly when stopped; sss t=1 opens with either pin', async t => {
  if (!prereqs(t)) return
  const h = vaultHost(t, {})
  let env = process.env
  try {
    const tpm = await startSwtpm(t, h.dir)
    env = tpm.env
    const tang = await startTang(t, h.dir)
    h.write({ tang: { url: tang.url } })
    let r = h.run(['disk', 'up'], tpm.env)
    t.equal(r.status, 0, r.out)
    t.equal(h.run(['disk', 'down'], tpm.env).status, 0)
    await tang.stop()
    r = h.run(['disk', 'up'], tpm.env)
    t.equal(r.status, 1)
    t.match(r.stderr, new RegExp(`the Tang server ${tang.url} cannot be reached`))
    t.notOk(mountedAt(h.mnt))
    await tang.start()
    t.equal(h.run(['disk', 'up'], tpm.env).status, 0, 'up again once tang is back')
    t.equal(h.run(['disk', 'down'], tpm.env).status, 0)

    spawnSync('rm', ['-rf', h.vault, `${h.vault}.jwe`, `${h.vault}.recovery`, `${h.vault}.init_done`, h.recoveryFile])
    h.write({ sss: { t: 1, pins: { tpm2: { pcrs: '7' }, tang: { url: tang.url } } } })
    r = h.run(['disk', 'up'], tpm.env)
    t.equal(r.status, 0, r.out)
    t.match(JSON.parse(h.run(['disk', 'status', '--json'], tpm.env).stdout), [{ unlock: `sss (1 of: tpm2 (PCR 7, sha256), tang (${tang.url}))` }])
    t.equal(h.run(['disk', 'down'], tpm.env).status, 0)
    await tang.stop()
    t.equal(h.run(['disk', 'up'], tpm.env).status, 0, 'sss: the TPM alone unlocks')
    t.equal(h.run(['disk', 'down'], tpm.env).status, 0)
    await tang.start()
    tpm.extendPcr7()
    t.equal(h.run(['disk', 'up'], tpm.env).status, 0, 'sss: tang alone unlocks')
    t.equal(h.run(['disk', 'down'], tpm.env).status, 0)
    await tang.stop()
    r = h.run(['disk', 'up'], tpm.env)
    t.equal(r.status, 1, 'sss: neither pin, no unlock')
    t.match(r.stderr, /PCRs no longer match.*and.*cannot be reached|cannot be reached.*PCRs no longer match/)
    await tang.start()
    h.noSecrets()
  } finally {
    h.run(['disk', 'down'], env)
    unmountUnder(h.dir)
  }
})

t.test('kill -9 at every step of a vault\'s first init: the next up converges, the key is never replaced', async t => {
  if (!prereqs(t)) return
  const h = vaultHost(t, 'keyfile')
  try {
    for (let n = 1; n <= 12; n++) {
      spawnSync('rm', ['-rf', h.vault, `${h.vault}.key`, `${h.vault}.recovery`, `${h.vault}.init_done`, join(h.dir, 'root/storage/.fscrypt')])
      h.run(['disk', 'up'], { ...process.env, PVDISK_CRASH_AT: String(n) })
      const key = existsSync(`${h.vault}.key`) ? readFileSync(`${h.vault}.key`) : undefined
      const r = h.run(['disk', 'up'])
      t.equal(r.status, 0, `crash at step ${n}: ${r.out}`)
      if (key) t.same(readFileSync(`${h.vault}.key`), key, `crash at step ${n}: the key was kept`)
      writeFileSync(join(h.mnt, 'f'), String(n))
      t.equal(h.run(['disk', 'down']).status, 0)
      t.equal(h.run(['disk', 'up']).status, 0)
      t.equal(readFileSync(join(h.mnt, 'f'), 'utf8'), String(n), `crash at step ${n}: usable afterwards`)
      t.equal(h.run(['disk', 'down']).status, 0)
    }
  } finally {
    h.run(['disk', 'down'])
    unmountUnder(h.dir)
  }
})

t.test('volumes, usage and gc on a vault; a vault that cannot be unlocked never reaches a container', async t => {
  if (!prereqs(t)) return
  const h = vaultHost(t, { tpm2: { pcrs: '7' } }, { web: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@vault', '/cache': 'revision@vault' } }) } })
  const V = join(h.dir, 'root/volumes/web')
  let env = process.env
  try {
    const tpm = await startSwtpm(t, h.dir)
    env = tpm.env
    let r = h.run(['volumes', 'up', 'web', '--revision', '2'], tpm.env)
    t.equal(r.status, 0, r.out)
    writeFileSync(join(V, 'docker--data/f'), 'in the vault')
    t.equal(readFileSync(join(h.mnt, 'perm/web/docker--data/f'), 'utf8'), 'in the vault', 'the volume lives in the vault')
    writeFileSync(join(V, 'docker--cache/c'), 'x'.repeat(10_000))
    r = h.run(['usage', '--json'], tpm.env)
    t.equal(r.status, 0, r.out)
    t.match(r.stdout, /"vault"/, 'usage covers the vault')
    t.equal(h.run(['volumes', 'down', 'web'], tpm.env).status, 0)
    r = h.run(['gc', '--revision', '9', '--keep', '0', '--json'], tpm.env)
    t.equal(r.status, 0, r.out)
    t.match(r.stdout, /rev\/2/, 'gc reaches into the (unlocked) vault')
    t.notOk(existsSync(join(h.mnt, 'rev/2')), 'and removed the old revision there')
    t.equal(h.run(['disk', 'down'], tpm.env).status, 0)
    tpm.extendPcr7()
    r = h.run(['volumes', 'up', 'web', '--revision', '3'], tpm.env)
    t.equal(r.status, 1)
    t.match(r.stderr, /PCRs no longer match/)
    t.notOk(readFileSync('/proc/self/mountinfo', 'utf8').includes(V), 'nothing is mounted for the container')
    t.equal(h.run(['disk', 'recover', 'vault', '--recovery-key', h.recoveryFile], tpm.env).status, 0)
    t.equal(h.run(['volumes', 'up', 'web', '--revision', '3'], tpm.env).status, 0)
    t.equal(readFileSync(join(V, 'docker--data/f'), 'utf8'), 'in the vault')
  } finally {
    h.run(['volumes', 'down', 'web'], env)
    h.run(['disk', 'down'], env)
    unmountUnder(h.dir)
  }
})

t.test('without recovery_key: the recovery key is shown once on a terminal, never logged; without a terminal there is none', async t => {
  if (!prereqs(t)) return
  const h = vaultHost(t, 'keyfile')
  const state = join(h.dir, 'state/device.json')
  writeFileSync(state, readFileSync(state, 'utf8').replace(/,\s*"recovery_key": "[^"]*"/, ''))
  try {
    // script(1) gives pvdisk a terminal, as an operator's shell does
    const cmd = [process.execPath, cli, 'disk', 'up', '--state', join(h.dir, 'state'), '--root', join(h.dir, 'root')].map(a => `'${a}'`).join(' ')
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'latin1' })
    t.equal(r.status, 0, r.stdout)
    const shown = /Recovery key of disk "vault" \(shown once[^\n]*\n\s*([0-9a-f]{64})/.exec(r.stdout)?.[1]
    t.ok(shown, 'the key is shown on the terminal')
    t.match(JSON.parse(h.run(['disk', 'status', '--json']).stdout), [{ recovery: true }])
    t.equal(h.run(['disk', 'down']).status, 0)
    spawnSync('rm', ['-f', `${h.vault}.key`])
    const rec = h.run(['disk', 'recover', 'vault'], process.env, Buffer.from(`${shown ?? ''}\n`))
    t.equal(rec.status, 0, `the key shown then recovers the vault: ${rec.out}`)
    t.equal(h.run(['disk', 'down']).status, 0)
    spawnSync('rm', ['-rf', h.vault, `${h.vault}.key`, `${h.vault}.recovery`, `${h.vault}.init_done`])
    const quiet = h.run(['disk', 'up'])
    t.equal(quiet.status, 0, quiet.out)
    t.notOk(existsSync(`${h.vault}.recovery`), 'no terminal, no file: no recovery key is made')
    t.match(JSON.parse(h.run(['disk', 'status', '--json']).stdout), [{ recovery: false }])
    h.noSecrets()
  } finally {
    h.run(['disk', 'down'])
    unmountUnder(h.dir)
  }
})

t.test('unlock changed from keyfile to tpm2: status flags the plain key left; recover seals to the TPM and removes it', async t => {
  if (!prereqs(t)) return
  const h = vaultHost(t, 'keyfile')
  let env = process.env
  try {
    const tpm = await startSwtpm(t, h.dir)
    env = tpm.env
    t.equal(h.run(['disk', 'up'], env).status, 0)
    writeFileSync(join(h.mnt, 'f'), 'kept')
    t.equal(h.run(['disk', 'down'], env).status, 0)
    h.write({ tpm2: { pcrs: '7' } })
    const st = h.run(['disk', 'status'], env)
    t.equal(st.status, 1)
    t.match(st.stdout, /vault\.key is left from before "unlock" changed: a plain key next to the vault still opens it/)
    t.equal(h.run(['disk', 'up'], env).status, 1, 'no sealed key yet: up fails and says to recover')
    const r = h.run(['disk', 'recover', 'vault', '--recovery-key', h.recoveryFile], env)
    t.equal(r.status, 0, r.out)
    t.notOk(existsSync(`${h.vault}.key`), 'the plain key is gone')
    t.ok(existsSync(`${h.vault}.jwe`))
    t.equal(readFileSync(join(h.mnt, 'f'), 'utf8'), 'kept')
    t.equal(h.run(['disk', 'status'], env).status, 0)
    t.equal(h.run(['disk', 'down'], env).status, 0)
    t.equal(h.run(['disk', 'up'], env).status, 0, 'unlocks with the TPM now')
  } finally {
    h.run(['disk', 'down'], env)
    unmountUnder(h.dir)
  }
})
