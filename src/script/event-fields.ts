/*
 * Where each top-level field of a JSON object sits in its bytes, so that a script reading `event.actor`
 * costs the parse of that one value instead of the whole event (which took half of a transform's time).
 * The bytes come from a page the Okta source has already validated as JSON, so this walk only skips.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

function skipWhitespace(body: Buffer, pos: number): number {
  for (;;) {
    const c = body[pos];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return pos;
    pos++;
  }
}

/** Position just after the string whose opening quote is at `pos`. */
function skipString(body: Buffer, pos: number): number {
  let from = pos + 1;
  for (;;) {
    const quote = body.indexOf(QUOTE, from);
    if (quote < 0) throw new Error('unterminated string');
    let backslashes = 0;
    for (let k = quote - 1; body[k] === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

function skipValue(body: Buffer, pos: number, end: number): number {
  const c = body[pos];
  if (c === QUOTE) return skipString(body, pos);
  if (c === OPEN_BRACE || c === OPEN_BRACKET) {
    let depth = 0;
    while (pos < end) {
      const b = body[pos]!;
      if (b === QUOTE) {
        pos = skipString(body, pos);
        continue;
      }
      if (b === OPEN_BRACE || b === OPEN_BRACKET) depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        depth--;
        if (depth === 0) return pos + 1;
      }
      pos++;
    }
    throw new Error('unterminated value');
  }
  // A number, true, false or null: up to the next delimiter.
  while (pos < end) {
    const b = body[pos]!;
    if (b === COMMA || b === CLOSE_BRACE || b === CLOSE_BRACKET || b <= 0x20) return pos;
    pos++;
  }
  return pos;
}

/**
 * What a whole page's bytes say about a key, worked out once per page: a transform that adds a field asks
 * every event of the page whether it already has it, and one search of the page answers for all of them.
 */
export class PageKeys {
  private readonly inPage = new Map<string, boolean>();

  constructor(
    private readonly body: Buffer,
    private readonly from: number,
    private readonly to: number,
  ) {}

  /**
   * Whether the key's quoted form (as JSON.stringify writes it) occurs anywhere in the page's events: a
   * search that stops at the first hit, so a key most events have costs next to nothing, and one the page
   * lacks costs one pass instead of one per event.
   */
  mayHold(key: string): boolean {
    let found = this.inPage.get(key);
    if (found === undefined) {
      found = this.body.subarray(this.from, this.to).indexOf(JSON.stringify(key)) >= 0;
      // Keys come from the script: a bound keeps one that invents keys from growing this without end.
      if (this.inPage.size < 1024) this.inPage.set(key, found);
    }
    return found;
  }
}

export interface EventFieldsOptions {
  /** The page the event belongs to, to answer "absent" for a key the whole page lacks. */
  page?: PageKeys;
  /** Whether one of the event's top-level keys is written with an escape; unknown when absent. */
  escapedKeys?: boolean;
}

/**
 * The top-level fields of the object at `body[start, end)`, found as far as needed: a lookup scans on from
 * where the last one stopped (Okta puts `actor` first), and a key whose quoted form appears nowhere in the
 * event (or the page) is known to be absent without a scan. A repeated key keeps its first value.
 */
export class EventFields {
  private readonly spans = new Map<string, [number, number]>();
  private readonly values = new Map<string, unknown>();
  private pos: number;
  private done = false;
  private escapedKeys: boolean | undefined;
  private readonly page: PageKeys | undefined;

  constructor(
    private readonly body: Buffer,
    private readonly start: number,
    private readonly end: number,
    options: EventFieldsOptions = {},
  ) {
    this.page = options.page;
    this.escapedKeys = options.escapedKeys;
    this.pos = skipWhitespace(body, start);
    if (body[this.pos] !== OPEN_BRACE) throw new Error('not an object');
    this.pos = skipWhitespace(body, this.pos + 1);
    if (body[this.pos] === CLOSE_BRACE) this.done = true;
  }

  has(key: string): boolean {
    return this.span(key) !== undefined;
  }

  /** The field's value, parsed from its own bytes once; undefined when absent. */
  value(key: string): unknown {
    if (this.values.has(key)) return this.values.get(key);
    const span = this.span(key);
    const value =
      span === undefined ? undefined : (JSON.parse(this.body.toString('utf8', span[0], span[1])) as unknown);
    this.values.set(key, value);
    return value;
  }

  /** Every key, in order. */
  keys(): string[] {
    while (!this.done) this.next();
    return [...this.spans.keys()];
  }

  private span(key: string): [number, number] | undefined {
    const known = this.spans.get(key);
    if (known !== undefined || this.done) return known;
    // An escaped key could spell it differently; without one, the raw bytes decide absence.
    if (this.escapedKeys === undefined) {
      this.escapedKeys = this.body.subarray(this.start, this.end).indexOf(BACKSLASH) >= 0;
    }
    if (!this.escapedKeys) {
      if (this.page !== undefined && !this.page.mayHold(key)) return undefined;
      if (this.body.subarray(this.start, this.end).indexOf(JSON.stringify(key)) < 0) return undefined;
    }
    while (!this.done) {
      const found = this.next();
      if (found === key) return this.spans.get(key);
    }
    return undefined;
  }

  /** Scans one field; returns its key. */
  private next(): string {
    const body = this.body;
    let pos = this.pos;
    const keyEnd = skipString(body, pos);
    let key = body.toString('utf8', pos + 1, keyEnd - 1);
    if (key.includes('\\')) key = JSON.parse(body.toString('utf8', pos, keyEnd)) as string;
    pos = skipWhitespace(body, keyEnd);
    if (body[pos] !== COLON) throw new Error('expected a colon');
    const valueStart = skipWhitespace(body, pos + 1);
    const valueEnd = skipValue(body, valueStart, this.end);
    if (!this.spans.has(key)) this.spans.set(key, [valueStart, valueEnd]);
    pos = skipWhitespace(body, valueEnd);
    if (body[pos] === COMMA) pos = skipWhitespace(body, pos + 1);
    else if (body[pos] === CLOSE_BRACE) this.done = true;
    else throw new Error('expected a comma or a closing brace');
    this.pos = pos;
    return key;
  }
}
