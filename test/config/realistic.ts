// device.json files as Pantavisor's own skeletons and overrides write them validate
// without errors; expected warnings are exactly the ones listed.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { validateFile } from '../../plugin/config/state.js'
import { codes, sameSet } from '../fixtures/helpers.js'

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/realistic/${name}`, import.meta.url))

const expected: Record<string, string[]> = {
  'default-skel.json': [],
  'imx-caam-override.json': ['W groups-missing '],
  'legacy-directory.json': [],
  'disks-v3-dual.json': ['W crypt-image-name-collision /disks_v3/1/path',
    'W disk-type-unknown /disks_v3/3/type'],
  'docker-skel.json': [],
}

for (const [name, warnings] of Object.entries(expected)) {
  t.test(name, async t => {
    sameSet(t, codes(await validateFile(fixture(name))), warnings)
  })
}
