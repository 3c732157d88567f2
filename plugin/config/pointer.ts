// RFC 6901 JSON pointers: how every problem says where in a file it is.

export const appendPointer = (pointer: string, token: string): string =>
  `${pointer}/${token.replace(/~/g, '~0').replace(/\//g, '~1')}`

export const pointerOf = (...tokens: (string | number)[]): string =>
  tokens.reduce<string>((p, t) => appendPointer(p, String(t)), '')
