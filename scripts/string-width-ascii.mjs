// Stand-in for string-width in the CLI bundle (scripts/bundle.mjs). The real module
// builds an Intl.Segmenter at import, ~40 ms of start-up, to measure wide and emoji
// characters; pvdisk's help text is ASCII. Escape sequences are not counted.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g
export default function stringWidth(s) {
  return typeof s === 'string' ? s.replace(ANSI, '').length : 0
}
