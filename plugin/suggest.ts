// "did you mean ...": the closest candidate by edit distance, if it is close enough.

const distance = (a: string, b: string): number => {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost)
    }
    prev = cur
  }
  return prev[b.length] ?? 0
}

export const closest = (word: string, candidates: Iterable<string>): string | undefined => {
  let best: string | undefined
  let bestScore = Infinity
  const lower = word.toLowerCase()
  for (const c of candidates) {
    const d = c.toLowerCase() === lower ? 0 : distance(lower, c.toLowerCase())
    if (d < bestScore) {
      best = c
      bestScore = d
    }
  }
  // close enough: at most a third of the word wrong; very short words only by case
  const allowed = word.length <= 2 ? 0 : Math.max(1, Math.floor(word.length / 3))
  return best !== undefined && bestScore <= allowed ? best : undefined
}

export const didYouMean = (word: string, candidates: Iterable<string>): string | undefined => {
  const c = closest(word, candidates)
  return c === undefined ? undefined : `did you mean ${JSON.stringify(c)}?`
}
