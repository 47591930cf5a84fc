import type { EventRecord } from './events.js';

/** A compiled `filter` expression; `null` from `parseFilter` means Okta would answer 400. */
export type EventPredicate = (record: EventRecord) => boolean;

type Token =
  { kind: 'string'; value: string } | { kind: 'word'; value: string } | { kind: 'punct'; value: string };

const TOKEN = /\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z_][\w.]*)|(\S))/y;

function tokenize(text: string): Token[] | null {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const m = TOKEN.exec(text);
    if (m === null) return null;
    if (m[1] !== undefined) {
      try {
        tokens.push({ kind: 'string', value: JSON.parse(`"${m[1]}"`) as string });
      } catch {
        return null;
      }
    } else if (m[2] !== undefined) tokens.push({ kind: 'word', value: m[2] });
    else tokens.push({ kind: 'punct', value: m[3] ?? '' });
  }
  return tokens;
}

function fieldOf(record: EventRecord, path: string): unknown {
  if (path === 'eventType') return record.eventType;
  if (path === 'uuid') return record.uuid;
  // Anything else needs the event itself; filters are for tests, so parsing on demand is fine.
  let value: unknown = JSON.parse(record.raw.toString('utf8'));
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/**
 * A subset of Okta's SCIM filter syntax: `field eq|ne|sw|co "value"`, `field pr`, `and`, `or`, parentheses.
 * Like Okta, `published` cannot be filtered on.
 */
export function parseFilter(text: string): EventPredicate | null {
  const tokens = tokenize(text);
  if (tokens === null || tokens.length === 0) return null;
  let pos = 0;
  const peekWord = (): string | null => {
    const t = tokens[pos];
    return t?.kind === 'word' ? t.value.toLowerCase() : null;
  };

  const clause = (): EventPredicate | null => {
    const t = tokens[pos];
    if (t?.kind === 'punct' && t.value === '(') {
      pos++;
      const inner = expr();
      const close = tokens[pos];
      if (inner === null || close?.kind !== 'punct' || close.value !== ')') return null;
      pos++;
      return inner;
    }
    if (t?.kind !== 'word' || t.value === 'published') return null;
    const field = t.value;
    const op = tokens[pos + 1];
    if (op?.kind !== 'word') return null;
    const opName = op.value.toLowerCase();
    if (opName === 'pr') {
      pos += 2;
      return (r) => {
        const v = fieldOf(r, field);
        return v !== undefined && v !== null;
      };
    }
    const operand = tokens[pos + 2];
    if (operand?.kind !== 'string') return null;
    pos += 3;
    const want = operand.value;
    const test: ((v: string) => boolean) | undefined = {
      eq: (v: string) => v === want,
      ne: (v: string) => v !== want,
      sw: (v: string) => v.startsWith(want),
      co: (v: string) => v.includes(want),
    }[opName];
    if (test === undefined) return null;
    return (r) => {
      const v = fieldOf(r, field);
      return typeof v === 'string' ? test(v) : opName === 'ne';
    };
  };

  const term = (): EventPredicate | null => {
    let left = clause();
    while (left !== null && peekWord() === 'and') {
      pos++;
      const right = clause();
      if (right === null) return null;
      const l = left;
      left = (r) => l(r) && right(r);
    }
    return left;
  };

  const expr = (): EventPredicate | null => {
    let left = term();
    while (left !== null && peekWord() === 'or') {
      pos++;
      const right = term();
      if (right === null) return null;
      const l = left;
      left = (r) => l(r) || right(r);
    }
    return left;
  };

  const result = expr();
  return result !== null && pos === tokens.length ? result : null;
}

/** Okta's `q`: up to 10 keywords of up to 40 characters, all of which must occur in the event. */
export function parseKeywords(q: string): EventPredicate | null {
  const words = q.split(/\s+/).filter((w) => w !== '');
  if (words.length === 0 || words.length > 10 || words.some((w) => w.length > 40)) return null;
  const needles = words.map((w) => Buffer.from(w, 'utf8'));
  return (r) => needles.every((n) => r.raw.includes(n));
}
