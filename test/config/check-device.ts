import t from 'tap'
import { checkDevice, resolveDisk } from '../../plugin/config/check-device.js'
import { checkSchema } from '../../plugin/config/schema-check.js'
import { checkStorage } from '../../plugin/config/check-app.js'
import { at, codes, device, json, sameSet, sink } from '../fixtures/helpers.js'

/** schema + semantic problems of a device.json value */
const check = (value: unknown) => {
  const { parsed, problems } = sink(json(value), 'device.json')
  checkSchema('device', parsed.value, problems)
  const disks = checkDevice(parsed.value, problems)
  const v = parsed.value
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) checkStorage(v.volumes, '/volumes', disks, problems)
  return { list: codes(problems.list), disks, problems: problems.list }
}

const versatile = (name: string, path = `/storage/dm-crypt-files/${name}/versatile.img,2,key_${name}`, extra = {}) =>
  ({ name, type: 'dm-crypt-versatile', path, ...extra })

t.test('a clean device.json has no problems', async t => {
  const r = check(device([versatile('a', undefined, { aliases: ['dm-versatile'] }), { name: 'b', type: 'volume-disk' }],
    { volumes: { 'pv--devmeta': { persistence: 'permanent', disk: 'dm-versatile' } } }))
  sameSet(t, r.list, [])
  t.equal(resolveDisk(r.disks, 'dm-versatile')?.name, 'a')
})

t.test('crypt path grammar', async t => {
  const cases: [string, string][] = [
    ['/a/x.img,2', 'crypt-path-syntax'],
    ['/a/x.img,2,k,extra', 'crypt-path-syntax'],
    ['-v2/a/x.img,2,k', 'crypt-path-syntax'],
    ['-v2  /a/x.img,2,k', 'crypt-path-syntax'],
    ['/a/dir/,2,k', 'crypt-path-syntax'],
    ['a/x.img,2,k', 'path-relative'],
    ['/a/../x.img,2,k', 'path-dotdot'],
    ['/a//x.img,2,k', 'path-unnormalised'],
    ['/a/./x.img,2,k', 'path-unnormalised'],
    ['/a/x\n.img,2,k', 'path-invalid-char'],
    ['/a/x.img,0,k', 'crypt-size-invalid'],
    ['/a/x.img,2M,k', 'crypt-size-invalid'],
    ['/a/x.img,2.5,k', 'crypt-size-invalid'],
    ['/a/x.img,-1,k', 'crypt-size-invalid'],
    ['/a/x.img,99999999999999999999,k', 'crypt-size-invalid'],
    ['/a/x.img,2,', 'crypt-key-name-invalid'],
    ['/a/x.img,2,a/b', 'crypt-key-name-invalid'],
    ['/a/x.img,2,..', 'crypt-key-name-invalid'],
    ['/a/x.img,2,.', 'crypt-key-name-invalid'],
  ]
  for (const [path, code] of cases) {
    sameSet(t, check(device([versatile('d', path)])).list, [`E ${code} /disks/0/path`], path)
  }
  sameSet(t, check(device([versatile('d', '-v2 /a/x.img,2,k')])).list, [], 'the -v2 prefix is allowed on any crypt disk')
  t.match(check(device([versatile('d', '/a/x.img,2M,k')])).problems[0], { hint: /already in MiB/ })
})

t.test('caam needs -v2 and mode; dcp needs mode', async t => {
  sameSet(t, check(device([{ name: 'c', type: 'dm-crypt-caam', mode: 'nxp', path: '/a/caam.img,2,k' }])).list, ['E caam-needs-v2 /disks/0/path'])
  sameSet(t, check(device([{ name: 'c', type: 'dm-crypt-caam', path: '-v2 /a/caam.img,2,k' }])).list, ['E schema-required /disks/0/mode'])
  sameSet(t, check(device([{ name: 'c', type: 'dm-crypt-dcp', path: '/a/dcp.img,2,k' }])).list, ['E schema-required /disks/0/mode'])
  sameSet(t, check(device([{ name: 'c', type: 'dm-crypt-dcp', mode: 'NXP', path: '/a/dcp.img,2,k' }])).list, ['E schema-enum /disks/0/mode'])
  t.match(check(device([{ name: 'c', type: 'dm-crypt-dcp', mode: 'NXP', path: '/a/dcp.img,2,k' }])).problems[0], { hint: /did you mean "nxp"/ })
  sameSet(t, check(device([{ name: 'c', type: 'dm-crypt-versatile' }])).list, ['E schema-required /disks/0/path'])
})

t.test('names: duplicates across arrays, empty, hostile, unportable', async t => {
  sameSet(t, check(device([versatile('a')], { disks_v2: [versatile('a', '/b/v.img,2,k')] })).list, ['E disk-name-duplicate /disks_v2/0/name'])
  sameSet(t, check(device([versatile('a')], { disks_v3: [{ name: 'a', type: 'volume-disk' }] })).list, ['E disk-name-duplicate /disks_v3/0/name'])
  sameSet(t, check(device([{ name: '', type: 'volume-disk' }])).list, ['E disk-name-empty /disks/0/name'])
  for (const bad of ['..', '.', 'a/b', 'a\u0000b', 'x\ny']) {
    sameSet(t, check(device([{ name: bad, type: 'volume-disk' }])).list, ['E disk-name-invalid /disks/0/name'], JSON.stringify(bad))
  }
  sameSet(t, check(device([{ name: 'my disk', type: 'volume-disk' }])).list, ['W disk-name-unportable /disks/0/name'])
  t.match(check(device([{ name: 'a@b', type: 'volume-disk' }])).problems[0], { code: 'disk-name-unportable', hint: /TYPE@DISK/ })
})

t.test('aliases', async t => {
  sameSet(t, check(device([versatile('a'), { name: 'b', type: 'volume-disk', aliases: ['a'] }])).list, ['E alias-collides-name /disks/1/aliases/0'])
  sameSet(t, check(device([{ name: 'a', type: 'volume-disk', aliases: ['x'] }, { name: 'b', type: 'volume-disk', aliases: ['x'] }])).list,
    ['E alias-duplicate /disks/1/aliases/0'])
  sameSet(t, check(device([{ name: 'a', type: 'volume-disk', aliases: [''] }])).list, ['E alias-empty /disks/0/aliases/0'])
  sameSet(t, check(device([{ name: 'a', type: 'volume-disk', aliases: ['a', 'b'] }])).list, [], 'an alias equal to its own name is harmless')
})

t.test('types: strict arrays error, disks_v3 warns and skips', async t => {
  sameSet(t, check(device([{ name: 'a', type: 'zfs' }])).list, ['E disk-type-unknown /disks/0/type'])
  sameSet(t, check({ groups: [], disks_v2: [{ name: 'a', type: 'dm-crypt-versatle', path: '/a.img,1,k' }] }).list, ['E disk-type-unknown /disks_v2/0/type'])
  const v3 = check({ groups: [], disks_v3: [{ name: 'f', type: 'future' }], volumes: { v: { persistence: 'permanent', disk: 'f' } } })
  sameSet(t, v3.list, ['W disk-type-unknown /disks_v3/0/type', 'E persistence-disk-unknown /volumes/v/disk'])
  t.match(at(v3.problems, '/volumes/v/disk'), { hint: /disks_v3/ })
})

t.test('swap, dual and provisioned volume disks are validated', async t => {
  sameSet(t, check(device([{ name: 's', type: 'swap-disk', provision: 'zram', provision_options: 'disksize=38M', format: 'swap' }])).list, [])
  sameSet(t, check(device([{ name: 's', type: 'swap-disk' }])).list, ['E schema-required /disks/0/provision'])
  sameSet(t, check(device([{ name: 'v', type: 'volume-disk', provision: 'block' }])).list,
    ['E schema-required /disks/0/format', 'E schema-required /disks/0/mount_target', 'E schema-required /disks/0/path'])
  sameSet(t, check(device([{ name: 'f', type: 'swap-disk', provision: 'file', path: '/storage/swapfile', provision_options: 'size=64M' }])).list, [])
  const noSize = check(device([{ name: 'f', type: 'swap-disk', provision: 'file', path: '/storage/swapfile' }, { name: 'g', type: 'swap-disk', provision: 'file', path: '/storage/g', provision_options: 'size=lots' }]))
  sameSet(t, noSize.list, ['E swap-size-invalid /disks/0/provision_options', 'E swap-size-invalid /disks/1/provision_options'])
  t.match(at(noSize.problems, '/disks/1/provision_options'), { message: /"size=lots" is not a size/, hint: /size=256M/ })
  sameSet(t, check(device([versatile('a'), versatile('b', '/b/v.img,2,k')],
    { disks_v3: [{ name: 'd', type: 'dual', disks: ['a', 'b', 'nope'], init_order: ['primary', 'create-primary'] }] })).list,
  ['E dual-disk-unknown /disks_v3/0/disks/2'])
  sameSet(t, check(device([{ name: 'd', type: 'dual', disks: [], init_order: [] }])).list, ['W dual-not-in-v3 /disks/0'])
  sameSet(t, check({ groups: [], disks_v3: [{ name: 's', type: 'swap-disk', provision: 'zram' }, { name: 'd', type: 'dual', disks: ['s'], init_order: ['bogus'] }] }).list,
    ['E schema-enum /disks_v3/1/init_order/0', 'E dual-disk-unusable /disks_v3/1/disks/0'])
})

t.test('default must be the string "yes", once', async t => {
  const boolean = check(device([{ name: 'a', type: 'volume-disk', default: true }]))
  sameSet(t, boolean.list, ['E schema-type /disks/0/default'])
  t.match(boolean.problems[0], { hint: /"default": "yes"/ })
  sameSet(t, check(device([{ name: 'a', type: 'volume-disk', default: 'no' }])).list, ['W default-ignored /disks/0/default'])
  sameSet(t, check(device([{ name: 'a', type: 'volume-disk', default: 'yes' }, { name: 'b', type: 'directory', path: '/x', default: 'yes' }])).list,
    ['E default-duplicate /disks/1/default'])
  sameSet(t, check(device([versatile('a', undefined, { default: 'yes' })])).list, ['W default-crypt /disks/0/default'])
})

t.test('images and keys never shared', async t => {
  sameSet(t, check(device([versatile('a', '/x/v.img,2,k1'), versatile('b', '/y/v.img,2,k2')])).list, ['W crypt-image-name-collision /disks/1/path'])
  sameSet(t, check(device([versatile('a', '/x/v.img,2,k1'), versatile('b', '/x/v.img,4,k2')])).list, ['E crypt-image-shared /disks/1/path'])
  sameSet(t, check(device([versatile('a', '/x/v1.img,2,k'), versatile('b', '/x/v2.img,2,k')])).list, ['E crypt-key-shared /disks/1/path'])
})

t.test('missing groups, empty arrays, typos, ignored fields', async t => {
  sameSet(t, check({ disks: [versatile('a')] }).list, ['W groups-missing '])
  sameSet(t, check(device([])).list, ['E disks-empty /disks'])
  sameSet(t, check(device([{ name: 'a', type: 'swap-disk', provision: 'zram', provision_ops: 'disksize=1M' }])).list,
    ['W unknown-key /disks/0/provision_ops'])
  sameSet(t, check({ groups: [], disk: [] }).list, ['W unknown-key /disk'])
  sameSet(t, check(device([versatile('a', undefined, { format: 'ext3', mount_target: '/m' })])).list,
    ['W field-ignored /disks/0/format', 'W field-ignored /disks/0/mount_target'])
  sameSet(t, check(device([{ name: 'a', type: 'directory', path: 'rel' }])).list, ['E path-relative /disks/0/path'])
  sameSet(t, check(device([{ name: 'a', type: 'volume-disk', mount_target: '/a/../b' }])).list, ['E path-dotdot /disks/0/mount_target'])
  sameSet(t, check(device([{ name: 'a', type: 'volume-disk', uuid: 1 }])).list, ['E schema-type /disks/0/uuid'])
  t.match(check(device([{ name: 'a', type: 'volume-disk', uuid: 1 }])).problems[0], { hint: /quote it/ })
})

t.test('volumes: persistence, disk references and names', async t => {
  const r = check(device([versatile('secure-disk')], {
    volumes: {
      a: { persistence: 'permanant' },
      b: { persistence: 'built-in' },
      c: { persistence: 'permanent', disk: 'secure-dsk' },
      d: { disk: 'secure-disk' },
      '..': { persistence: 'boot' },
      e: { persistence: 'boot', disk: '' },
    },
  }))
  sameSet(t, r.list, [
    'E persistence-type-unknown /volumes/a/persistence',
    'E persistence-type-unknown /volumes/b/persistence',
    'E persistence-disk-unknown /volumes/c/disk',
    'E schema-required /volumes/d/persistence',
    'E volume-name-invalid /volumes/..',
    'E persistence-disk-unknown /volumes/e/disk',
  ])
  t.match(at(r.problems, '/volumes/a/persistence'), { hint: /did you mean "permanent"/ })
  t.match(at(r.problems, '/volumes/b/persistence'), { hint: /write "boot"/ })
  t.match(at(r.problems, '/volumes/c/disk'), { hint: /did you mean "secure-disk"/ })
  const swap = check(device([{ name: 's', type: 'swap-disk', provision: 'zram' }], { volumes: { v: { persistence: 'boot', disk: 's' } } }))
  sameSet(t, swap.list, ['E persistence-disk-unusable /volumes/v/disk'])
  t.equal(check({ groups: [], volumes: { v: { persistence: 'boot', disk: 'x' } } }).problems[0]?.hint, 'declare a disk named "x" in device.json "disks"')
})

t.test('wrong shapes do not crash the semantic checks', async t => {
  for (const v of [[], 'x', 1, null, { disks: {} }, { disks: [1, 'x', null, []] }, { disks: [{ name: 1, type: [] }] }, { volumes: [] }, { volumes: { a: 1 } }]) {
    const r = check(v)
    t.ok(r.list.some(c => c.startsWith('E schema-type')), JSON.stringify(v))
  }
})

t.test('pvdisk\'s own types: only in disks_v3, with a usable unlock and a recovery key away from the data', async t => {
  const luks = (extra = {}) => ({ name: 'sec', type: 'dm-crypt-luks2', path: '/storage/sec/disk.img,64,sec', ...extra })
  const v3 = (...disks: unknown[]) => check({ groups: [], disks_v3: disks })
  sameSet(t, v3(luks(), { name: 'v', type: 'fscrypt', path: '/storage/vault', unlock: { tpm2: { pcrs: '7' } }, recovery_key: '/boot/rec/v.key' }).list, [])
  t.match(v3(luks({ unlock: { sss: { t: 2, pins: { tpm2: {}, tang: [{ url: 'http://a' }, { url: 'https://b:7500' }] } } } })).disks.disks.get('sec')?.unlock,
    { kind: 'clevis', pin: 'sss', config: { t: 2, pins: { tpm2: [{ pcr_bank: 'sha256' }], tang: [{ url: 'http://a' }, { url: 'https://b:7500' }] } }, summary: 'sss (2 of: tpm2 (no PCR policy), tang (http://a), tang (https://b:7500))' })
  const strict = check({ groups: [], disks: [luks()] })
  t.ok(strict.list.includes('E pvdisk-type-in-strict-array /disks/0/type'), 'in a strict array Pantavisor would refuse the whole state')
    const bad: [unknown, string, string][] = [
    [{ tpm2: { pcrs: '7,24' } }, 'unlock-pcrs-invalid', '/disks_v3/0/unlock/tpm2/pcrs'],
    [{ tpm2: { pcr_bank: 'md5' } }, 'unlock-bank-invalid', '/disks_v3/0/unlock/tpm2/pcr_bank'],
    [{ tang: { url: 'tang.example' } }, 'unlock-invalid', '/disks_v3/0/unlock/tang/url'],
    [{ sss: { t: 3, pins: { tpm2: {}, tang: { url: 'http://a' } } } }, 'unlock-threshold-invalid', '/disks_v3/0/unlock/sss/t'],
    [{ sss: { t: 1, pins: { yubikey: {} } } }, 'unlock-pin-unknown', '/disks_v3/0/unlock/sss/pins/yubikey'],
    [{ tpm2: {}, tang: { url: 'http://a' } }, 'unlock-invalid', '/disks_v3/0/unlock'],
    ['passphrase', 'unlock-invalid', '/disks_v3/0/unlock'],
  ]
  for (const [unlock, code, pointer] of bad) {
    const r = v3(luks({ unlock }))
    t.ok(r.problems.some(p => p.code === code && p.pointer === pointer && p.severity === 'error'), `${JSON.stringify(unlock)}: ${code} at ${pointer} (${r.list.join(', ')})`)
    t.notOk(r.disks.disks.has('sec'), 'and the disk is not usable')
  }
  t.ok(v3(luks({ recovery_key: '/storage/sec/rec.key' })).list.includes('E recovery-key-near-data /disks_v3/0/recovery_key'), 'never next to the image')
  t.ok(v3({ name: 'v', type: 'fscrypt', path: '/storage/vault', recovery_key: '/storage/vault/r' }).list.includes('E recovery-key-near-data /disks_v3/0/recovery_key'), 'never inside the vault')
  t.ok(v3(luks({ path: '/storage/sec/disk.img,16,sec' })).list.includes('E crypt-size-invalid /disks_v3/0/path'), 'LUKS2 needs more than its 16 MiB header')
  t.ok(v3(luks({ path: '-v2 /storage/sec/disk.img,64,sec' })).list.includes('E crypt-path-syntax /disks_v3/0/path'))
  t.ok(v3({ name: 'v', type: 'fscrypt', path: 'vault' }).list.includes('E path-relative /disks_v3/0/path'))
})
