import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createProgress } from '../../plugin/host/progress.js'
import { json } from '../fixtures/helpers.js'
import { findInPath } from '../../plugin/host/run.js'
import { requirePrereq } from '../fixtures/prereq.js'

const fakeStream = (isTTY: boolean) => {
  const out: string[] = []
  return { out, stream: { isTTY, columns: 60, write: (s: string) => out.push(s) } as unknown as NodeJS.WriteStream }
}

t.test('a terminal gets one line rewritten in place with an ETA', async t => {
  const { out, stream } = fakeStream(true)
  const p = createProgress('gc', 4, stream)
  p.update(0, '/a')
  await new Promise(r => setTimeout(r, 120))
  p.update(2, '/b')
  p.update(4, '')
  p.finish()
  t.match(out[0], /^\r\x1b\[Kgc 0\/4 \(0%\) \/a$/)
  t.match(out[1], /^\r\x1b\[Kgc 2\/4 \(50%\) ETA \d+s \/b$/)
  t.equal(out.at(-1), '\r\x1b[K', 'the line is cleared at the end')
  t.ok(out.every(l => l.length <= 60 + 4), 'never wider than the terminal')
})

t.test('nothing when the output is not a terminal', async t => {
  const { out, stream } = fakeStream(false)
  const p = createProgress('gc', 4, stream)
  p.update(1)
  p.finish()
  t.same(out, [])
})

t.test('pvdisk gc shows progress on a terminal only', async t => {
  if (!requirePrereq(t, findInPath('script') !== undefined, 'script(1) is not installed (bsdutils)')) return
  const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))
  const dir = t.testdir({ state: { 'device.json': json({ groups: [] }), web: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: {} }) } }, root: {} })
  for (const r of ['1', '2', '3', '4']) mkdirSync(join(dir, 'root/storage/disks/rev', r, 'web/docker--x'), { recursive: true })
  const args = ['gc', '--dry-run', '--keep', '0', '--revision', '9', '--state', join(dir, 'state'), '--root', join(dir, 'root')]
  const plain = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' })
  t.equal(plain.status, 0)
  t.notMatch(plain.stdout + plain.stderr, /\r|ETA/, 'no progress when not a terminal')
  const tty = spawnSync('script', ['-qec', [process.execPath, cli, ...args].map(a => `'${a}'`).join(' '), '/dev/null'], { encoding: 'utf8' })
  t.equal(tty.status, 0)
  t.match(tty.stdout, /\r\x1b\[Kgc \(dry run\) \d\/4 /, 'progress on a terminal')
  t.match(tty.stdout, /would free/)
})
