// kill -9 at every step of first init, up and down, on a real kernel: rerun converges and
// the data survives.
import t from 'tap'
import { runGuest } from '../fixtures/uml.js'

t.setTimeout(3_600_000) // under QEMU (hosts where UML cannot start) a guest takes up to 3x as long
t.test('crash safety on a real kernel', async t => {
  await runGuest(t, 'crash', ['crash_init', 'crash_updown'], [
    /^kill -9 at each of \d+ steps of first init, then up converges with data intact$/,
    /^kill -9 at each step of up and down keeps the data$/,
  ])
})
