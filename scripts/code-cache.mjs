// Writes V8's code cache for a CommonJS bundle of dist/ (node scripts/code-cache.mjs FILE):
// FILE.v8cache holds the bytecode of every function of FILE, compiled eagerly, so that the
// loader dist/<program>.mjs (written by scripts/bundle.mjs) runs FILE without compiling it.
// Eager compilation is set only while FILE is compiled: the cache's flag hash is then that of
// a plain node, which accepts it. A node of another version rejects the cache (V8 checks its
// version, flags and source), and the loader then compiles FILE as usual.
import { readFileSync, writeFileSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { Script } from 'node:vm'
import { wrapBundle } from './cached-program.mjs'

const file = process.argv[2]
setFlagsFromString('--no-lazy')
const script = new Script(wrapBundle(readFileSync(file, 'utf8')), { filename: file })
setFlagsFromString('--lazy')
const cachedData = script.createCachedData()
if (new Script(wrapBundle(readFileSync(file, 'utf8')), { filename: file, cachedData }).cachedDataRejected) throw new Error(`${file}: this node rejects the code cache it made`)
writeFileSync(`${file}.v8cache`, cachedData, { mode: 0o644 })
