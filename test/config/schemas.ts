// The schemas help editors (an $id, a description on every property), agree with each
// other, and the example validates; the generated validators and types match them.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { validateFile } from '../../plugin/config/state.js'
import { codes } from '../fixtures/helpers.js'

const root = new URL('../../', import.meta.url)
const load = (name: string) => JSON.parse(readFileSync(new URL(`schemas/${name}.schema.json`, root), 'utf8'))

/** properties without a description; "if" conditions and the strict type narrowing only restate described ones */
const undescribed = (node: unknown, at = ''): string[] => {
  if (typeof node !== 'object' || node === null) return []
  const entries = Object.entries(node as Record<string, unknown>)
  const restating = /\/if$|\/strictDisk\/allOf\/1$/.test(at)
  return entries.flatMap(([k, v]) => [
    ...(k === 'properties' && !restating
      ? Object.entries(v as Record<string, { description?: unknown }>).filter(([, p]) => typeof p.description !== 'string').map(([name]) => `${at}/properties/${name}`)
      : []),
    ...undescribed(v, `${at}/${k}`),
  ])
}

t.test('every schema has an $id and describes every property', async t => {
  for (const name of ['device', 'src', 'run']) {
    const s = load(name)
    t.match(s.$id, /^urn:pvdisk:schema:/, name)
    t.same(undescribed(s), [], name)
  }
})

t.test('device.json and run.json describe volumes identically', async t => {
  t.same(load('device').definitions.volume, load('run').definitions.volume)
})

t.test('device.json.example validates and shows the four disk types', async t => {
  const file = fileURLToPath(new URL('device.json.example', root))
  t.same(codes(await validateFile(file)), [])
  const example = JSON.parse(readFileSync(file, 'utf8'))
  t.equal(example.$schema, './schemas/device.schema.json')
  t.same(example.disks.map((d: { type: string }) => d.type).sort(), ['directory', 'dm-crypt-caam', 'dm-crypt-dcp', 'dm-crypt-versatile'])
  t.ok(example.volumes && example.groups)
})

t.test('generated validators and types match the schemas', async t => {
  const { generate } = await import('../../scripts/generate.mjs') as { generate: () => Promise<Record<string, string>> }
  for (const [file, text] of Object.entries(await generate())) {
    t.equal(readFileSync(new URL(`plugin/config/generated/${file}`, root), 'utf8'), text, `plugin/config/generated/${file} is up to date (npm run generate)`)
  }
})
