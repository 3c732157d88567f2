// Exact commands of pvdisk's own encrypted types, recorded rather than run (they run for
// real in test/disks/uml-luks2.ts and test/disks/fscrypt.ts): no secret in any of them.
import t from 'tap'
import { readdirSync } from 'node:fs'
import { checkDevice } from '../../plugin/config/check-device.js'
import { disksUp, selectDisks } from '../../plugin/disks/engine.js'
import type { DiskContext } from '../../plugin/disks/context.js'
import { dmNameOf } from '../../plugin/disks/crypt.js'
import { RecordingRunner } from '../../plugin/host/run.js'
import { json, sink } from '../fixtures/helpers.js'

const setup = (root: string, disks: unknown[]) => {
  const { parsed, problems } = sink(json({ groups: [], disks_v3: disks }))
  const index = checkDevice(parsed.value, problems)
  const runner = new RecordingRunner({ planning: true })
  const ctx: DiskContext = { root, runner, kernel: { mounts: () => [], loops: () => [], dms: () => [] }, log: () => undefined }
  return { ctx, runner, disks: selectDisks(index, []), problems }
}
const PBKDF = ['--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000']
const commands = (runner: RecordingRunner) => runner.commands.filter(c => !c.note).map(c => [...c.argv, ...(c.input ? [`<${c.input}>`] : [])])

t.test('luks2 with a key file: format with the key, a second keyslot for the recovery key, open with the key file', async t => {
  const root = t.testdir({})
  const { ctx, runner, disks, problems } = setup(root, [{ name: 'sec', type: 'dm-crypt-luks2', path: '/storage/c/disk.img,64,key', recovery_key: '/boot/rec/sec.key' }])
  t.same(problems.list, [])
  await disksUp(ctx, disks)
  const d = `${root}/storage/c`
  const dm = dmNameOf(disks[0]!, `${d}/disk.img`)
  t.same(commands(runner), [
    ['fallocate', '--length', String(64 * 1024 * 1024), '--', `${d}/disk.img.new`],
    ['cryptsetup', 'luksFormat', '--batch-mode', '--type', 'luks2', ...PBKDF, `--key-file=${d}/key.key`, '--', `${d}/disk.img.new`],
    ['cryptsetup', 'luksAddKey', '--batch-mode', ...PBKDF, `--key-file=${d}/key.key`, '--new-keyfile=-', '--', `${d}/disk.img.new`, '<<secret>>'],
    ['losetup', '--find', '--show', '--', `${d}/disk.img.new`],
    ['cryptsetup', 'open', '--type', 'luks2', `--key-file=${d}/key.key`, '--', '$LOOP', dm],
    ['mkfs.ext4', '-q', '-E', 'lazy_itable_init=1,lazy_journal_init=1', '--', `/dev/mapper/${dm}`],
    ['mount', '-t', 'ext4', '-o', 'noatime', '--', `/dev/mapper/${dm}`, `${root}/media/pv/dmcrypt/sec`],
  ])
  t.ok(runner.lines.includes(`# keep the recovery key in ${root}/boot/rec/sec.key (mode 0600)`))
  t.same(readdirSync(root), [], 'a plan creates nothing')
})

t.test('luks2 bound by sss: the recovery key formats, Clevis binds, Clevis unlocks; the pins in argv, no key', async t => {
  const root = t.testdir({})
  const unlock = { sss: { t: 1, pins: { tpm2: { pcrs: '0,7' }, tang: [{ url: 'http://tang.example:7500', thp: 'AbCdEfGhIjKlMnOpQrSt' }] } } }
  const { ctx, runner, disks } = setup(root, [{ name: 'sec', type: 'dm-crypt-luks2', path: '/storage/c/disk.img,64,key', unlock, recovery_key: '/rec/sec' }])
  await disksUp(ctx, disks)
  const d = `${root}/storage/c`
  const dm = dmNameOf(disks[0]!, `${d}/disk.img`)
  const cfg = '{"t":1,"pins":{"tpm2":[{"pcr_bank":"sha256","pcr_ids":"0,7"}],"tang":[{"url":"http://tang.example:7500","thp":"AbCdEfGhIjKlMnOpQrSt"}]}}'
  t.same(commands(runner).slice(1, 5), [
    ['cryptsetup', 'luksFormat', '--batch-mode', '--type', 'luks2', ...PBKDF, '--key-slot', '0', '--key-file=-', '--', `${d}/disk.img.new`, '<<secret>>'],
    ['clevis', 'luks', 'bind', '-y', '-d', `${d}/disk.img.new`, '-k', '-', 'sss', cfg, '<<secret>>'],
    ['losetup', '--find', '--show', '--', `${d}/disk.img.new`],
    ['clevis', 'luks', 'unlock', '-d', '$LOOP', '-n', dm],
  ])
  t.notOk(runner.lines.some(l => l.includes('key.key')), 'no key file next to a bound image')
})

t.test('fscrypt vault with tpm2: recovery wrap and sealed key first, then encrypt; the key only on stdin', async t => {
  const root = t.testdir({})
  const { ctx, runner, disks } = setup(root, [{ name: 'v', type: 'fscrypt', path: '/storage/vault', unlock: { tpm2: { pcrs: '7' } }, recovery_key: '/rec/v' }])
  await disksUp(ctx, disks)
  const v = `${root}/storage/vault`
  const c = commands(runner)
  t.same(c[0], ['clevis', 'encrypt', 'tpm2', '{"pcr_bank":"sha256","pcr_ids":"7"}', '-y', '<<secret>>'])
  t.match(c[2], ['fscrypt', 'encrypt', v, '--source=raw_key', /^--name=pvdisk-v-[0-9a-f]{8}$/, '--no-recovery', '--quiet', '<<secret>>'])
  t.same(c.at(-1), ['mount', '--bind', '--', v, `${root}/media/pv/dmcrypt/v`])
  const lines = runner.lines.join('\n')
  t.ok(lines.indexOf(`${v}.recovery`) < lines.indexOf('fscrypt encrypt') && lines.indexOf(`${v}.jwe`) < lines.indexOf('fscrypt encrypt'), 'the key is kept before the directory is encrypted')
  t.same(readdirSync(root), [], 'a plan creates nothing')
})
