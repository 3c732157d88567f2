// The systemd units as Docker's plugin documentation has them: systemd-analyze verify finds
// nothing to say, the plugin requires Docker (never the reverse), exit 2 is not restarted,
// and the example config the unit names is one pvdisk serve accepts.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig, defaultConfig } from '../../plugin/caretaker/config.js'
import { findInPath } from '../../plugin/host/run.js'
import { requirePrereq } from '../fixtures/prereq.js'

const repo = fileURLToPath(new URL('../../', import.meta.url))
const unit = (name: string) => readFileSync(join(repo, 'systemd', name), 'utf8')

t.test('systemd-analyze verify has nothing to say about the units', async t => {
  if (!requirePrereq(t, findInPath('systemd-analyze') !== undefined, 'systemd-analyze is not installed (apt-get install systemd)')) return
  const dir = t.testdir({})
  for (const f of ['pvdisk.service', 'pvdisk.socket']) copyFileSync(join(repo, 'systemd', f), join(dir, f))
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'pvdisk.service'), join(dir, 'pvdisk.socket')], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stderr.split('\n').filter(l => l.includes('pvdisk')).join('\n'), '', 'no warning about pvdisk\'s units')
})

t.test('the plugin requires Docker, Docker does not require the plugin', async t => {
  const service = unit('pvdisk.service')
  t.match(service, /^Requires=.*\bdocker\.service\b/m)
  t.match(service, /^Before=docker\.service$/m)
  t.notMatch(service, /RequiredBy=/, 'a broken pvdisk never keeps Docker from starting')
  t.match(service, /^RestartPreventExitStatus=2$/m, 'a mistake in the input (exit 2) is not restarted in a loop')
  t.match(unit('pvdisk.socket'), /^ListenStream=\/run\/docker\/plugins\/pvdisk\.sock$/m)
})

t.test('the example /etc/pvdisk/pvdisk.conf is valid and holds the defaults', async t => {
  const service = unit('pvdisk.service')
  t.match(service, /--config \/etc\/pvdisk\/pvdisk\.conf/)
  t.same(await loadConfig(join(repo, 'etc/pvdisk/pvdisk.conf')), defaultConfig())
})
