// "did you mean ...": the closest candidate by edit distance, if it is close enough.

/** optimal string alignment distance: insertions, deletions, substitutions, transpositions */
const distance = (a: string, b: string): number => {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  const at = (i: number, j: number): number => d[i]?.[j] ?? Infinity
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1)
      const row = d[i]
      if (row) row[j] = v
    }
  }
  return at(a.length, b.length)
}

export const closest = (word: string, candidates: Iterable<string>): string | undefined => {
  let best: string | undefined
  let bestScore = Infinity
  const lower = word.toLowerCase()
  // close enough: at most a third of the word wrong; very short words only by case
  const allowed = word.length <= 2 ? 0 : Math.max(1, Math.floor(word.length / 3))
  for (const c of candidates) {
    // the distance is at least the difference in length: a hopeless candidate costs nothing
    if (Math.abs(c.length - word.length) > Math.min(allowed, bestScore)) continue
    const score = distance(lower, c.toLowerCase())
    if (score < bestScore) {
      best = c
      bestScore = score
    }
  }
  return best !== undefined && bestScore <= allowed ? best : undefined
}

export const didYouMean = (word: string, candidates: Iterable<string>): string | undefined => {
  const c = closest(word, candidates)
  return c === undefined ? undefined : `did you mean ${JSON.stringify(c)}?`
}
