// Progress for long operations: on a terminal, one line rewritten in place with a count,
// a percentage and an ETA; when the output is not a terminal, nothing at all.

export interface Progress {
  update(done: number, detail?: string): void
  finish(): void
}

const seconds = (ms: number): string => (ms < 60_000 ? `${Math.ceil(ms / 1000)}s` : `${Math.floor(ms / 60_000)}m${Math.ceil((ms % 60_000) / 1000)}s`)

export const createProgress = (label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress => {
  if (!stream.isTTY || total === 0) return { update: () => undefined, finish: () => undefined }
  const started = Date.now()
  let last = 0
  const width = stream.columns ?? 80
  return {
    update: (done, detail = '') => {
      const now = Date.now()
      if (now - last < 100 && done < total) return
      last = now
      const eta = done > 0 ? ` ETA ${seconds(((now - started) / done) * (total - done))}` : ''
      stream.write(`\r\x1b[K${`${label} ${done}/${total} (${Math.floor((done / total) * 100)}%)${eta} ${detail}`.slice(0, width - 1)}`)
    },
    finish: () => {
      stream.write('\r\x1b[K')
    },
  }
}
