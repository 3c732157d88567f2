import t from 'tap'
import { JsonSyntaxError, lineColumn, parseJson } from '../../plugin/config/json-source.js'

t.test('parses what JSON.parse parses', async t => {
  const samples = ['{}', '[]', '0', '-1.5e3', '"a\\u00e9\\n\\"\\\\\\/\\b\\f\\r\\t"', 'true', 'false', 'null',
    '{"a": [1, {"b": null}], "c": "d"}', ' \n\t{ "x" : [ ] } ', '"\\ud83d\\ude00"']
  for (const s of samples) t.same(parseJson(s).value, JSON.parse(s), s)
})

t.test('records where each value and key is', async t => {
  const text = '{\n\t"disks": [\n\t\t{"name": "a"}\n\t]\n}'
  const p = parseJson(text)
  t.same(lineColumn(text, p.offsets.get('/disks') ?? -1), { line: 2, column: 2 })
  t.same(lineColumn(text, p.offsets.get('/disks/0') ?? -1), { line: 3, column: 3 })
  t.same(lineColumn(text, p.offsets.get('/disks/0/name') ?? -1), { line: 3, column: 4 })
  t.equal(p.offsets.get(''), 0)
})

t.test('escapes pointer tokens', async t => {
  const p = parseJson('{"persistence": {"/a/b": "boot", "x~y": 1}}')
  t.ok(p.offsets.has('/persistence/~1a~1b'))
  t.ok(p.offsets.has('/persistence/x~0y'))
})

t.test('reports duplicate keys', async t => {
  const p = parseJson('{"a": 1, "b": {"c": 1, "c": 2}, "a": 3}')
  t.same(p.duplicates.map(d => d.pointer), ['/b/c', '/a'])
  t.same(p.value, { a: 3, b: { c: 2 } })
})

t.test('keeps __proto__ as data', async t => {
  const p = parseJson('{"__proto__": {"polluted": true}}')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.same(Object.keys(p.value as object), ['__proto__'])
})

t.test('syntax errors carry an offset', async t => {
  const cases: [string, number, RegExp][] = [
    ['{"a": 1,}', 8, /property name/],
    ['{"a" 1}', 5, /':'/],
    ['[1 2]', 3, /',' or '\]'/],
    ['{"a": 1} x', 9, /after the end/],
    ['', 0, /end of file/],
    ['"abc', 0, /unterminated/],
    ['"a\tb"', 2, /control character/],
    ['"\\x"', 1, /invalid escape/],
    ['"\\u12g4"', 1, /\\u escape/],
    ['{"a": tru}', 6, /expected a JSON value/],
    ['{"a": 1 "b": 2}', 8, /',' or '}'/],
    ['01', 1, /after the end/],
    ['-', 0, /JSON value/],
  ]
  for (const [text, offset, re] of cases) {
    const e = (() => {
      try {
        parseJson(text)
      } catch (err) {
        return err
      }
    })()
    t.ok(e instanceof JsonSyntaxError, text)
    t.match(e, { offset, message: re }, text)
  }
})

t.test('refuses absurd nesting without overflowing the stack', async t => {
  t.throws(() => parseJson('['.repeat(100000)), /nesting deeper/)
  t.throws(() => parseJson('{"a":'.repeat(1000)), /nesting deeper/)
})

t.test('lineColumn is 1-based', async t => {
  t.same(lineColumn('ab\ncd', 0), { line: 1, column: 1 })
  t.same(lineColumn('ab\ncd', 4), { line: 2, column: 2 })
})

t.test('JSON.parse first: colons and escaped quotes inside strings count as no members; offsets come on first use', async t => {
  const text = '{"a:b": "x:\\":y", "c": ["d:", {"e\\\\": ":"}], "f": {"g": 1}}'
  const p = parseJson(text)
  t.same(p.value, JSON.parse(text))
  t.same(p.duplicates, [])
  t.ok(p.offsets.has('/c/1/e\\'), 'the offsets, found when asked for')
  t.equal(p.offsets.get('/f/g'), text.indexOf('"g"'))
  const hidden = parseJson('{"k": "a\\"b:c", "k": 2}')
  t.same(hidden.duplicates.map(d => d.pointer), ['/k'], 'a duplicate beside a string with an escaped quote and a colon')
  t.same(hidden.value, { k: 2 })
})

t.test('valid JSON nested deeper than the parser allows is still refused', async t => {
  t.throws(() => parseJson(`${'['.repeat(300)}${']'.repeat(300)}`), /nesting deeper/)
  t.throws(() => parseJson(`${'{"a":'.repeat(300)}1${'}'.repeat(300)}`), /nesting deeper/)
  t.same(parseJson(`${'['.repeat(256)}${']'.repeat(256)}`).duplicates, [], '256 levels are allowed, as before')
})
