// Sizes as dd reads them, for Pantavisor's swap files (provision_options "size=64M").
/** a dd size (Pantavisor's swap file "size="): digits, then c, w, b, K, M, G, T (binary) or KB, MB, GB, TB (decimal) */
export const parseSize = (s: string): number | undefined => {
  const m = /^(\d+)(c|w|b|[KMGT]B?|[kmgt])?$/.exec(s.trim())
  if (!m) return undefined
  const unit = m[2] ?? ''
  const mult: Record<string, number> = { '': 1, c: 1, w: 2, b: 512, K: 1024, k: 1024, M: 1024 ** 2, m: 1024 ** 2, G: 1024 ** 3, g: 1024 ** 3, T: 1024 ** 4, t: 1024 ** 4, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 }
  const n = Number(m[1]) * (mult[unit] ?? Number.NaN)
  return Number.isSafeInteger(n) && n > 0 ? n : undefined
}
