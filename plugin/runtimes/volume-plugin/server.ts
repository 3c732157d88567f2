// `pvdisk serve`: the VolumeDriver plugin on a unix socket (JSON over HTTP POST, as
// Docker's plugin API). SIGTERM/SIGINT finish the requests in flight and exit 0.
import { createServer, type Server } from 'node:http'
import { connect } from 'node:net'
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs'
import { dirname } from 'node:path'
import { PvdiskError } from '../../errors.js'
import type { VolumeDriver } from './driver.js'

const MAX_BODY = 1024 * 1024
const DOCKER_PLUGINS = '/run/docker/plugins'
const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.1+json'

const listening = (socket: string): Promise<boolean> => new Promise(resolve => {
  const c = connect(socket)
  c.once('connect', () => {
    c.destroy()
    resolve(true)
  })
  c.once('error', () => resolve(false))
})

export interface PluginServer {
  server: Server
  /** answer what is in flight (new requests get "stopping"), then close */
  stop(): Promise<void>
}

const socketActivated = (): boolean => process.env.LISTEN_FDS === '1' && process.env.LISTEN_PID === String(process.pid)

/** --socket, checked before anything starts: short enough, and in a directory that exists (or Docker's own) */
export const checkSocket = (socket: string): void => {
  if (socketActivated()) return
  if (Buffer.byteLength(socket) > 107) {
    throw new PvdiskError('EUSAGE', `--socket ${socket}: ${Buffer.byteLength(socket)} bytes, but a unix socket path may have at most 107`, ['choose a shorter path'])
  }
  // Docker's plugin directory may not exist before dockerd first ran; any other is the user's to make
  if (!existsSync(dirname(socket)) && dirname(socket) !== DOCKER_PLUGINS) {
    throw new PvdiskError('EUSAGE', `--socket ${socket}: the directory ${dirname(socket)} does not exist`, [`create it first, or use Docker's ${DOCKER_PLUGINS}/pvdisk.sock`])
  }
}

/** an endpoint beside the plugin API that takes its body as bytes and answers text (the hooks' fast path) */
export type RawRoute = (body: Buffer) => Promise<{ status: number, text: string }>

export const startServer = async (socket: string, driver: VolumeDriver, raw: Record<string, RawRoute> = {}): Promise<PluginServer> => {
  const activated = socketActivated()
  checkSocket(socket)
  if (!activated && !existsSync(dirname(socket))) mkdirSync(DOCKER_PLUGINS, { recursive: true, mode: 0o755 })
  if (!activated && existsSync(socket)) {
    if (await listening(socket)) throw new PvdiskError('EUSAGE', `${socket}: another plugin is already listening there`, ['stop it, or choose another --socket'])
    unlinkSync(socket) // left by a plugin that died
  }
  let inFlight = 0
  let draining = false
  let drained: (() => void) | undefined
  const server = createServer((req, res) => {
    const late = draining // arrived after the stop began: refused; earlier ones are served
    inFlight++
    res.once('close', () => {
      inFlight--
      if (draining && inFlight === 0) drained?.()
    })
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (b: Buffer) => {
      size += b.length
      if (size <= MAX_BODY) chunks.push(b)
    })
    req.on('end', () => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'Content-Type': CONTENT_TYPE })
        res.end(JSON.stringify(body))
      }
      if (late) return reply(503, { Err: 'pvdisk is stopping; retry once it is back' })
      if (req.method !== 'POST') return reply(405, { Err: 'plugin endpoints take POST' })
      if (size > MAX_BODY) return reply(413, { Err: 'request too large' })
      const route = raw[req.url ?? '']
      if (route) {
        void route(Buffer.concat(chunks)).catch((e: Error) => ({ status: 500, text: `pvdisk: unexpected error: ${e.message}\n` })).then(r => {
          res.writeHead(r.status, { 'Content-Type': 'text/plain; charset=utf-8' })
          res.end(r.text)
        })
        return
      }
      let body: Record<string, unknown> = {}
      try {
        const text = Buffer.concat(chunks).toString('utf8').trim()
        if (text !== '') body = JSON.parse(text) as Record<string, unknown>
      } catch {
        return reply(400, { Err: 'request body is not JSON' })
      }
      void driver.handle(req.url ?? '', body).then(r => reply(r.Err ? 500 : 200, r))
    })
  })
  const stop = async (): Promise<void> => {
    draining = true
    if (inFlight > 0) await new Promise<void>(resolve => { drained = resolve })
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
  // systemd socket activation (pvdisk.socket): the listening socket arrives as fd 3
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    if (activated) server.listen({ fd: 3 }, () => resolve())
    else server.listen(socket, () => resolve())
  })
  if (!activated) chmodSync(socket, 0o660)
  return { server, stop }
}
