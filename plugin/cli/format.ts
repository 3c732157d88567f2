// How sizes are shown to people.

export const humanBytes = (n: number | undefined): string =>
  n === undefined ? '-' : n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)}G` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)}M` : `${(n / 1024).toFixed(0)}K`
