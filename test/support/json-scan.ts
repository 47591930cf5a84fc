/**
 * A small JSON scanner for the sink emulators. They must record the exact bytes a client sent (to compare
 * with what the Okta emulator served), which `JSON.parse` cannot give back: it reads `2.50` as 2.5.
 */

export class JsonScanError extends Error {}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

export function skipWhitespace(text: string, at: number): number {
  while (at < text.length && WS.has(text.charCodeAt(at))) at++;
  return at;
}

/** The end (exclusive) of the JSON value starting at `at` (no leading whitespace). Throws when malformed. */
export function valueEnd(text: string, at: number): number {
  const c = text[at];
  if (c === undefined) throw new JsonScanError('unexpected end of input');
  if (c === '"') return stringEnd(text, at);
  if (c === '{' || c === '[') {
    const close = c === '{' ? '}' : ']';
    let i = skipWhitespace(text, at + 1);
    if (text[i] === close) return i + 1;
    for (;;) {
      if (c === '{') {
        if (text[i] !== '"') throw new JsonScanError(`expected a key at ${i}`);
        i = skipWhitespace(text, stringEnd(text, i));
        if (text[i] !== ':') throw new JsonScanError(`expected ':' at ${i}`);
        i = skipWhitespace(text, i + 1);
      }
      i = skipWhitespace(text, valueEnd(text, i));
      if (text[i] === ',') {
        i = skipWhitespace(text, i + 1);
        continue;
      }
      if (text[i] === close) return i + 1;
      throw new JsonScanError(`expected ',' or '${close}' at ${i}`);
    }
  }
  const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(
    text.slice(at, at + 400),
  );
  if (literal === null) throw new JsonScanError(`unexpected character at ${at}`);
  return at + literal[0].length;
}

function stringEnd(text: string, at: number): number {
  let i = at + 1;
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch === 0x5c) i += 2;
    else if (ch === 0x22) return i + 1;
    else if (ch < 0x20) throw new JsonScanError(`control character in a string at ${i}`);
    else i++;
  }
  throw new JsonScanError('unterminated string');
}

/** The top-level members of the object at `at`: key -> raw value text, plus where the object ends. */
export function objectMembers(text: string, at: number): { members: Map<string, string>; end: number } {
  if (text[at] !== '{') throw new JsonScanError(`expected an object at ${at}`);
  const end = valueEnd(text, at);
  const members = new Map<string, string>();
  let i = skipWhitespace(text, at + 1);
  while (text[i] === '"') {
    const keyEnd = stringEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skipWhitespace(text, keyEnd) + 1;
    i = skipWhitespace(text, i);
    const vEnd = valueEnd(text, i);
    members.set(key, text.slice(i, vEnd));
    i = skipWhitespace(text, vEnd);
    if (text[i] === ',') i = skipWhitespace(text, i + 1);
  }
  return { members, end };
}
