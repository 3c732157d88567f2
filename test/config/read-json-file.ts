import t from 'tap'
import { execFileSync } from 'node:child_process'
import { writeFileSync, truncateSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { FileProblems } from '../../plugin/config/problems.js'
import { firstInvalidUtf8, readJsonFile } from '../../plugin/config/read-json-file.js'
import { codes } from '../fixtures/helpers.js'

const read = async (path: string) => {
  const problems = new FileProblems(path)
  const parsed = await readJsonFile(path, problems)
  return { parsed, problems: problems.list }
}

t.test('reads a good file', async t => {
  const dir = t.testdir({ 'a.json': '{"x": 1}' })
  const r = await read(join(dir, 'a.json'))
  t.same(r.parsed?.value, { x: 1 })
  t.same(r.problems, [])
})

t.test('bad files become one clear problem each', async t => {
  const dir = t.testdir({ 'sub': {}, 'syntax.json': '{\n  "a": 1,\n}', 'latin1.json': Buffer.from([0x7b, 0x0a, 0x22, 0xe9, 0x22, 0x7d]) })
  writeFileSync(join(dir, 'huge.json'), '')
  truncateSync(join(dir, 'huge.json'), 50 * 1024 * 1024)
  symlinkSync('loop', join(dir, 'loop'))
  execFileSync('mkfifo', [join(dir, 'fifo')])
  const cases: [string, string, RegExp][] = [
    ['missing.json', 'file-unreadable', /not found/],
    ['sub', 'file-not-regular', /directory/],
    ['fifo', 'file-not-regular', /FIFO/],
    ['huge.json', 'file-too-large', /50\.0 MiB/],
    ['loop', 'file-unreadable', /symbolic links/],
    ['syntax.json', 'json-syntax', /property name/],
    ['latin1.json', 'file-not-utf8', /byte 3 is 0xe9/],
  ]
  for (const [name, code, re] of cases) {
    const r = await read(join(dir, name))
    t.equal(r.parsed, undefined, name)
    t.equal(r.problems.length, 1, name)
    t.equal(r.problems[0]?.code, code, name)
    t.match(r.problems[0]?.message, re, name)
  }
  const syntax = await read(join(dir, 'syntax.json'))
  t.match(syntax.problems[0], { line: 3, column: 1 })
  const latin = await read(join(dir, 'latin1.json'))
  t.match(latin.problems[0], { line: 2, column: 2 })
})

t.test('a BOM is a warning, duplicate keys an error', async t => {
  const dir = t.testdir({ 'bom.json': '\ufeff{"a": 1}', 'dup.json': '{"a": 1,\n "a": 2}' })
  const bom = await read(join(dir, 'bom.json'))
  t.same(bom.parsed?.value, { a: 1 })
  t.same(codes(bom.problems), ['W json-bom '])
  const dup = await read(join(dir, 'dup.json'))
  t.same(codes(dup.problems), ['E json-duplicate-key '])
  t.match(dup.problems[0], { line: 2, column: 2, message: /\/a/ })
})

t.test('firstInvalidUtf8', async t => {
  t.equal(firstInvalidUtf8(Buffer.from('héllo ✓ 😀')), -1)
  t.equal(firstInvalidUtf8(Buffer.from([0x61, 0xc3])), 1)
  t.equal(firstInvalidUtf8(Buffer.from([0x61, 0xff])), 1)
  t.equal(firstInvalidUtf8(Buffer.from([0xe2, 0x9c, 0x41])), 0)
})
