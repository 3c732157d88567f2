// The architecture, enforced (docs/architecture.md): plugin/ is in layers and imports only
// point down; one runtime never imports another; no file over 250 lines and no function
// over 80. Generated code is exempt from the size rules.
import t from 'tap'
import ts from 'typescript'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, posix, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const plugin = fileURLToPath(new URL('../plugin/', import.meta.url))

/** bottom to top; errors.ts sits below everything, index.ts (the library API) above */
export const LAYERS = ['host', 'config', 'disks', 'volumes', 'caretaker', 'runtimes', 'cli'] as const

const walk = (dir: string): string[] => readdirSync(dir).flatMap(f => {
  const p = join(dir, f)
  return statSync(p).isDirectory() ? walk(p) : /\.ts$/.test(f) && !f.endsWith('.d.ts') ? [p] : []
})

const sources = walk(plugin).map(f => relative(plugin, f).split('\\').join('/'))

/** rank of a file: -1 for errors.ts, LAYERS.length for index.ts */
const rankOf = (file: string): number => {
  if (file === 'errors.ts') return -1
  if (file === 'index.ts') return LAYERS.length
  return LAYERS.indexOf(file.split('/')[0] as (typeof LAYERS)[number])
}

/** runtimes/docker/up.ts -> runtimes/docker; other layers are one unit */
const unitOf = (file: string): string => (file.startsWith('runtimes/') ? file.split('/').slice(0, 2).join('/') : file.split('/')[0] ?? file)

const importsOf = (file: string): string[] => {
  const text = readFileSync(join(plugin, file), 'utf8')
  const specs = [...text.matchAll(/(?:from\s+|import\(\s*|import\s+)'(\.[^']+)'/g)].map(m => m[1] as string)
  return specs.map(s => posix.normalize(posix.join(posix.dirname(file), s)).replace(/\.js$/, '.ts'))
}

t.test('every source file belongs to a layer', async t => {
  t.same(sources.filter(f => rankOf(f) === -1 && f !== 'errors.ts'), [], 'no source file outside the layers')
})

t.test('imports only point down, and one runtime never imports another', async t => {
  const wrong: string[] = []
  for (const f of sources) {
    for (const target of importsOf(f)) {
      if (target.endsWith('generated/validators.ts')) continue // its .js sits beside its .d.ts
      if (!sources.includes(target)) {
        wrong.push(`${f} imports ${target}, which does not exist`)
        continue
      }
      const up = rankOf(target) > rankOf(f)
      const sideways = f.startsWith('runtimes/') && target.startsWith('runtimes/') && unitOf(f) !== unitOf(target)
      if (up || sideways) wrong.push(`${f} imports ${target}`)
    }
  }
  t.same(wrong, [], 'no import points up or sideways')
})

t.test('host/ imports nothing of pvdisk but errors.ts', async t => {
  const wrong = sources.filter(f => f.startsWith('host/'))
    .flatMap(f => importsOf(f).filter(i => i !== 'errors.ts' && !i.startsWith('host/')).map(i => `${f} imports ${i}`))
  t.same(wrong, [], 'host/ stands alone')
})

const MAX_FILE = 250
const MAX_FUNCTION = 80

t.test(`no file over ${MAX_FILE} lines, no function over ${MAX_FUNCTION}`, async t => {
  const big: string[] = []
  for (const f of sources.filter(s => !s.includes('/generated/'))) {
    const text = readFileSync(join(plugin, f), 'utf8')
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
    if (lines > MAX_FILE) big.push(`${f}: ${lines} lines`)
    const src = ts.createSourceFile(f, text, ts.ScriptTarget.ES2022, true)
    const visit = (n: ts.Node): void => {
      if (ts.isFunctionLike(n) && 'body' in n && n.body) {
        const from = src.getLineAndCharacterOfPosition(n.getStart()).line
        const to = src.getLineAndCharacterOfPosition(n.end).line
        if (to - from + 1 > MAX_FUNCTION) big.push(`${f}:${from + 1}: a function of ${to - from + 1} lines`)
      }
      ts.forEachChild(n, visit)
    }
    visit(src)
  }
  t.same(big, [], 'everything within bounds')
})

t.test('tests follow the tree', async t => {
  const tests = fileURLToPath(new URL('./', import.meta.url))
  const layers = new Set<string>(LAYERS)
  const astray = walk(tests).map(p => relative(tests, p))
    .filter(f => !f.startsWith('fixtures/') && f !== 'layout.ts' && !layers.has(dirname(f).split('/')[0] ?? ''))
  t.same(astray, [], 'every test sits under the layer it tests')
})
