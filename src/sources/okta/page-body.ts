import { isUtf8 } from 'node:buffer';
import { EventEdit, type EventRef, type TransformedEvents } from '../../core/collection-logic.js';
import { OktailError } from '../../core/errors.js';
import type { JsonObject, JsonValue } from '../../core/json.js';
import { ABSENT, FIELD_COUNT, UNKNOWN, topLevelFieldId, type KnownFields } from '../../core/event-batch.js';

/*
 * A System Log page is already the JSON we must write: each line of output is an event's own bytes plus
 * the host's tags. Parsing a page and serialising every event again costs most of a collector's CPU, so
 * the page is validated by one pass over its bytes that only records where each event starts and ends.
 * Events are parsed only when something must look inside them (first/last event refs, user transforms,
 * and the rare event that already carries a tag key).
 */

/** Bits of `EventSpans.flags`. */
export const SpanFlag = {
  /** Raw LF or CR bytes sit between the event's tokens (it was pretty-printed). */
  NEWLINE: 1,
  /** The event is `{}` (possibly with whitespace inside): tags need no leading comma. */
  EMPTY: 2,
  /**
   * A top-level key is written with a backslash escape, so comparing raw bytes with a tag key could miss
   * an equal key: such an event is checked on its parsed form.
   */
  ESCAPED_KEY: 4,
} as const;

/** Where each event of a validated page sits in the body. */
export interface EventSpans {
  /** Number of events in the page. */
  readonly count: number;
  /** `[start, end)` byte offsets of event i at `[2i]` and `[2i + 1]`: start at `{`, end just after `}`. */
  readonly offsets: Uint32Array;
  /** One byte of `SpanFlag` bits per event. */
  readonly flags: Uint8Array;
  /**
   * Per event, bit `c & 31` is set for the first byte `c` after the opening quote of each top-level key: a
   * cheap filter for "might this event already have a tag's key" (Okta's keys start with letters, tags
   * with `_`, so real pages never need a closer look).
   */
  readonly keyMasks: Uint32Array;
  /**
   * The sinks' per-event fields (uuid, published, eventType, severity: `FIELD_COUNT` slots per event, in
   * core/event-batch's order), found while the scan walked each event's top level: the string value's
   * bytes between its quotes at `[fieldFrom, fieldTo)` of the body, `fieldFrom` 0 when the event has no
   * such string field (the first occurrence of a repeated key counts), and bit f of `fieldEscaped[i]` set
   * when the value holds an escape. Absent on spans made by other means; keys written with escapes are
   * not recognised, as core/event-batch's own reader does not recognise them either.
   */
  readonly fieldFrom?: Uint32Array;
  readonly fieldTo?: Uint32Array;
  readonly fieldEscaped?: Uint8Array;
}

/** JSON allows unbounded nesting; a bound keeps a hostile or corrupt body from costing without limit. */
export const MAX_PAGE_DEPTH = 512;

// Offsets are kept in a Uint32Array: 4 GiB is far beyond any page Okta sends (1000 events ~ 2 MB).
const MAX_BODY_BYTES = 0xffff_ffff;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;

const IN_OBJECT = 1;
const IN_ARRAY = 2;

/** Bytes that end the quick skip over a string body: the closing quote, an escape, a control character. */
const STRING_STOP = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_STOP[c] = 1;
STRING_STOP[QUOTE] = 1;
STRING_STOP[BACKSLASH] = 1;

const WHITESPACE = new Uint8Array(256);
WHITESPACE[SPACE] = 1;
WHITESPACE[TAB] = 1;
WHITESPACE[LF] = 1;
WHITESPACE[CR] = 1;

/** Characters allowed after a backslash, other than `u`. */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const ch of '"\\/bfnrt') SIMPLE_ESCAPE[ch.charCodeAt(0)] = 1;

const HEX = new Uint8Array(256);
for (const ch of '0123456789abcdefABCDEF') HEX[ch.charCodeAt(0)] = 1;

const DIGIT = new Uint8Array(256);
for (let c = ZERO; c <= NINE; c++) DIGIT[c] = 1;

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

function notEvents(what: string): OktailError {
  return new OktailError('OKTA_FETCH_FAILED', `Response body is not a JSON array of events: ${what}`, true);
}

/** One byte, shown only when it is printable ASCII, so a message never carries body content beyond it. */
function describeByte(c: number | undefined): string {
  if (c === undefined) return 'end of body';
  if (c > 0x20 && c < 0x7f) return `'${String.fromCharCode(c)}'`;
  return `byte 0x${c.toString(16).padStart(2, '0')}`;
}

function truncated(len: number): never {
  throw notEvents(`truncated at byte ${len}`);
}

function unexpected(b: Buffer, pos: number, expected: string): never {
  if (pos >= b.length) truncated(b.length);
  throw notEvents(`expected ${expected} at byte ${pos}, found ${describeByte(b[pos])}`);
}

/**
 * Skips a string whose opening quote is at `pos`. Returns the offset after its closing quote, or its
 * bitwise complement when the string contains an escape (callers that care about escaped keys test < 0).
 */
function skipString(b: Buffer, pos: number, len: number): number {
  let escaped = false;
  pos++;
  for (;;) {
    // The common case is a short run of plain bytes ended by the closing quote. A table lookup per byte
    // measured faster on System Log pages than Buffer#indexOf (the native call costs more than a short
    // scan) and than 4-bytes-at-a-time word tricks (which only pay off on strings far longer than Okta's).
    let c = 0;
    while (pos < len && STRING_STOP[(c = b[pos] as number)] === 0) pos++;
    if (pos >= len) truncated(len);
    if (c === QUOTE) return escaped ? ~(pos + 1) : pos + 1;
    if (c === BACKSLASH) {
      escaped = true;
      if (pos + 1 >= len) truncated(len);
      const e = b[pos + 1] as number;
      if (SIMPLE_ESCAPE[e] === 1) {
        pos += 2;
      } else if (e === 0x75) {
        if (pos + 6 > len) truncated(len);
        if (
          HEX[b[pos + 2] as number] === 0 ||
          HEX[b[pos + 3] as number] === 0 ||
          HEX[b[pos + 4] as number] === 0 ||
          HEX[b[pos + 5] as number] === 0
        ) {
          throw notEvents(`invalid \\u escape in a string at byte ${pos} (needs 4 hex digits)`);
        }
        pos += 6;
      } else {
        throw notEvents(`invalid escape in a string at byte ${pos}`);
      }
    } else {
      throw notEvents(`control character (${describeByte(c)}) inside a string at byte ${pos}`);
    }
  }
}

/** Skips a number starting at `pos` (a `-` or a digit) and returns the offset after it. */
function skipNumber(b: Buffer, pos: number, len: number): number {
  const start = pos;
  if (b[pos] === MINUS) pos++;
  if (pos >= len) truncated(len);
  let c = b[pos] as number;
  if (c === ZERO) {
    pos++;
    if (pos < len && DIGIT[b[pos] as number] === 1) {
      throw notEvents(`invalid number at byte ${start} (leading zero)`);
    }
  } else if (DIGIT[c] === 1) {
    pos++;
    while (pos < len && DIGIT[b[pos] as number] === 1) pos++;
  } else {
    throw notEvents(`invalid number at byte ${start} ('-' needs a digit)`);
  }
  if (pos < len && b[pos] === DOT) {
    pos++;
    if (pos >= len) truncated(len);
    if (DIGIT[b[pos] as number] === 0)
      throw notEvents(`invalid number at byte ${start} (no digit after '.')`);
    pos++;
    while (pos < len && DIGIT[b[pos] as number] === 1) pos++;
  }
  if (pos < len && (b[pos] === 0x65 || b[pos] === 0x45)) {
    pos++;
    if (pos >= len) truncated(len);
    c = b[pos] as number;
    if (c === PLUS || c === MINUS) pos++;
    if (pos >= len) truncated(len);
    if (DIGIT[b[pos] as number] === 0)
      throw notEvents(`invalid number at byte ${start} (no digit in exponent)`);
    pos++;
    while (pos < len && DIGIT[b[pos] as number] === 1) pos++;
  }
  return pos;
}

function skipLiteral(b: Buffer, pos: number, len: number, literal: Buffer): number {
  for (let k = 0; k < literal.length; k++) {
    if (pos + k >= len) truncated(len);
    if (b[pos + k] !== literal[k]) throw notEvents(`invalid literal at byte ${pos}`);
  }
  return pos + literal.length;
}

function skipWhitespace(b: Buffer, pos: number, len: number): number {
  while (pos < len && WHITESPACE[b[pos] as number] === 1) pos++;
  return pos;
}

/** Offset of the first byte that breaks UTF-8 (the same rules as `isUtf8`), or -1. Used only to report. */
function firstInvalidUtf8(b: Buffer): number {
  const len = b.length;
  let i = 0;
  while (i < len) {
    const c = b[i] as number;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) [need, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [need, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [need, min] = [3, 0x10000];
    else return i;
    let cp = c & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

/**
 * Validates `body` as RFC 8259 JSON text (UTF-8, an optional BOM tolerated) whose top-level value is an
 * array of objects, and returns where each object sits. Throws a retryable `OKTA_FETCH_FAILED` error that
 * says what is wrong and at which byte for anything else: a truncated or corrupt page must be fetched
 * again, never written.
 */
export function scanPage(body: Buffer): EventSpans {
  const b = body;
  const len = b.length;
  if (len > MAX_BODY_BYTES) throw notEvents(`the body is too large (${len} bytes)`);
  let pos = 0;
  if (len >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) pos = 3;
  pos = skipWhitespace(b, pos, len);
  if (pos >= len) throw notEvents('the body is empty');
  const first = b[pos] as number;
  if (first !== OPEN_BRACKET) {
    if (first === OPEN_BRACE) throw notEvents(`the body is a JSON object, not an array (byte ${pos})`);
    if (
      first === QUOTE ||
      first === MINUS ||
      DIGIT[first] === 1 ||
      first === 0x74 ||
      first === 0x66 ||
      first === 0x6e
    ) {
      throw notEvents(`the top-level value is not an array (starts with ${describeByte(first)})`);
    }
    throw new OktailError(
      'OKTA_FETCH_FAILED',
      `Response body is not JSON (starts with ${describeByte(first)} at byte ${pos})`,
      true,
    );
  }
  pos++;

  let capacity = 1024;
  let offsets = new Uint32Array(capacity * 2);
  let flags = new Uint8Array(capacity);
  let keyMasks = new Uint32Array(capacity);
  let fieldFrom = new Uint32Array(capacity * FIELD_COUNT);
  let fieldTo = new Uint32Array(capacity * FIELD_COUNT);
  let fieldEscaped = new Uint8Array(capacity);
  // The current event's fields, copied out with its offsets (the arrays grow only between events).
  const eventFrom = new Uint32Array(FIELD_COUNT);
  const eventTo = new Uint32Array(FIELD_COUNT);
  let count = 0;
  const stack = new Uint8Array(MAX_PAGE_DEPTH + 1);

  pos = skipWhitespace(b, pos, len);
  if (pos >= len) truncated(len);
  if (b[pos] === CLOSE_BRACKET) {
    pos++;
  } else {
    for (;;) {
      if (b[pos] !== OPEN_BRACE) {
        if (pos >= len) truncated(len);
        throw notEvents(`element ${count} is not an object (byte ${pos})`);
      }
      const start = pos;
      let flag = 0;
      let keyMask = 0;
      // Which field the value being read belongs to (-1: none), which fields' first value was seen, and
      // which of those hold escapes.
      let field = -1;
      let seen = 0;
      let escapedFields = 0;
      eventFrom.fill(0);
      // The page's array is depth 1, the event depth 2.
      let depth = 2;
      stack[depth] = IN_OBJECT;
      pos = skipWhitespace(b, pos + 1, len);
      if (b[pos] === CLOSE_BRACE) {
        pos++;
        depth = 1;
        flag |= SpanFlag.EMPTY;
      } else {
        if (b[pos] !== QUOTE) unexpected(b, pos, 'a string key or }');
        let r = skipString(b, pos, len);
        if (r < 0) {
          r = ~r;
          flag |= SpanFlag.ESCAPED_KEY;
        } else {
          field = topLevelFieldId(b, pos + 1, r - 1);
          if (field >= 0) seen |= 1 << field;
        }
        keyMask |= 1 << ((b[pos + 1] as number) & 31);
        pos = r;
        if (b[pos] !== COLON) {
          pos = skipWhitespace(b, pos, len);
          if (b[pos] !== COLON) unexpected(b, pos, "':'");
        }
        pos++;
      }

      // Iterative rather than recursive so depth costs no stack and the bound is a simple check.
      value: while (depth > 1) {
        // A value is expected at (or after whitespace from) pos.
        let c = b[pos];
        if (c === undefined || WHITESPACE[c] === 1) {
          pos = skipWhitespace(b, pos, len);
          if (pos >= len) truncated(len);
          c = b[pos] ?? 0;
        }
        if (c === QUOTE) {
          const r = skipString(b, pos, len);
          if (field >= 0 && depth === 2) {
            eventFrom[field] = pos + 1;
            eventTo[field] = (r < 0 ? ~r : r) - 1;
            if (r < 0) escapedFields |= 1 << field;
          }
          pos = r < 0 ? ~r : r;
        } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
          if (depth === MAX_PAGE_DEPTH)
            throw notEvents(`nesting deeper than ${MAX_PAGE_DEPTH} levels at byte ${pos}`);
          pos = skipWhitespace(b, pos + 1, len);
          if (c === OPEN_BRACE) {
            if (b[pos] === CLOSE_BRACE) {
              pos++;
            } else {
              if (b[pos] !== QUOTE) unexpected(b, pos, 'a string key or }');
              const r = skipString(b, pos, len);
              pos = r < 0 ? ~r : r;
              if (b[pos] !== COLON) {
                pos = skipWhitespace(b, pos, len);
                if (b[pos] !== COLON) unexpected(b, pos, "':'");
              }
              pos++;
              stack[++depth] = IN_OBJECT;
              continue;
            }
          } else if (b[pos] === CLOSE_BRACKET) {
            pos++;
          } else {
            stack[++depth] = IN_ARRAY;
            continue;
          }
        } else if (c === MINUS || DIGIT[c] === 1) {
          pos = skipNumber(b, pos, len);
        } else if (c === 0x74) {
          pos = skipLiteral(b, pos, len, TRUE);
        } else if (c === 0x66) {
          pos = skipLiteral(b, pos, len, FALSE);
        } else if (c === 0x6e) {
          pos = skipLiteral(b, pos, len, NULL);
        } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
          throw notEvents(`trailing comma or missing value before byte ${pos}`);
        } else {
          unexpected(b, pos, 'a value');
        }

        // After a complete value: a comma continues the container, a closing bracket ends it.
        for (;;) {
          c = b[pos];
          if (c === undefined || WHITESPACE[c] === 1) {
            pos = skipWhitespace(b, pos, len);
            if (pos >= len) truncated(len);
            c = b[pos] ?? 0;
          }
          const inObject = stack[depth] === IN_OBJECT;
          if (c === COMMA) {
            pos++;
            if (inObject) {
              c = b[pos];
              if (c !== QUOTE) {
                pos = skipWhitespace(b, pos, len);
                c = b[pos];
                if (c === CLOSE_BRACE) throw notEvents(`trailing comma before byte ${pos}`);
                if (c !== QUOTE) unexpected(b, pos, 'a string key');
              }
              const r = skipString(b, pos, len);
              if (depth === 2) {
                if (r < 0) {
                  flag |= SpanFlag.ESCAPED_KEY;
                  field = -1;
                } else {
                  field = topLevelFieldId(b, pos + 1, r - 1);
                  if (field >= 0) {
                    if ((seen & (1 << field)) !== 0) field = -1;
                    else seen |= 1 << field;
                  }
                }
                keyMask |= 1 << ((b[pos + 1] as number) & 31);
              }
              pos = r < 0 ? ~r : r;
              if (b[pos] !== COLON) {
                pos = skipWhitespace(b, pos, len);
                if (b[pos] !== COLON) unexpected(b, pos, "':'");
              }
              pos++;
            }
            continue value;
          }
          if (c === (inObject ? CLOSE_BRACE : CLOSE_BRACKET)) {
            pos++;
            depth--;
            if (depth === 1) break value;
            continue;
          }
          unexpected(b, pos, inObject ? "',' or '}'" : "',' or ']'");
        }
      }

      if (count === capacity) {
        capacity *= 2;
        const grownOffsets = new Uint32Array(capacity * 2);
        grownOffsets.set(offsets);
        offsets = grownOffsets;
        const grownFlags = new Uint8Array(capacity);
        grownFlags.set(flags);
        flags = grownFlags;
        const grownMasks = new Uint32Array(capacity);
        grownMasks.set(keyMasks);
        keyMasks = grownMasks;
        const grownFrom = new Uint32Array(capacity * FIELD_COUNT);
        grownFrom.set(fieldFrom);
        fieldFrom = grownFrom;
        const grownTo = new Uint32Array(capacity * FIELD_COUNT);
        grownTo.set(fieldTo);
        fieldTo = grownTo;
        const grownEscaped = new Uint8Array(capacity);
        grownEscaped.set(fieldEscaped);
        fieldEscaped = grownEscaped;
      }
      offsets[2 * count] = start;
      offsets[2 * count + 1] = pos;
      flags[count] = flag;
      keyMasks[count] = keyMask;
      fieldFrom.set(eventFrom, count * FIELD_COUNT);
      fieldTo.set(eventTo, count * FIELD_COUNT);
      fieldEscaped[count] = escapedFields;
      count++;

      pos = skipWhitespace(b, pos, len);
      if (pos >= len) truncated(len);
      const c = b[pos];
      if (c === CLOSE_BRACKET) {
        pos++;
        break;
      }
      if (c !== COMMA) unexpected(b, pos, "',' or ']' after element " + String(count - 1));
      pos = skipWhitespace(b, pos + 1, len);
      if (pos >= len) truncated(len);
      if (b[pos] === CLOSE_BRACKET) throw notEvents(`trailing comma before byte ${pos}`);
    }
  }

  pos = skipWhitespace(b, pos, len);
  if (pos < len) throw notEvents(`unexpected data after the array at byte ${pos}`);

  // Strings were skipped byte-agnostically; one native pass checks their UTF-8 (bytes >= 0x80 outside
  // strings were already rejected as unexpected characters).
  if (!isUtf8(b)) throw notEvents(`invalid UTF-8 at byte ${firstInvalidUtf8(b)}`);

  markNewlines(b, offsets, flags, count);
  return {
    count,
    offsets: offsets.subarray(0, count * 2),
    flags: flags.subarray(0, count),
    keyMasks: keyMasks.subarray(0, count),
    fieldFrom: fieldFrom.subarray(0, count * FIELD_COUNT),
    fieldTo: fieldTo.subarray(0, count * FIELD_COUNT),
    fieldEscaped: fieldEscaped.subarray(0, count),
  };
}

/**
 * In validated JSON a raw LF or CR can only be whitespace between tokens (strings cannot hold control
 * characters, and UTF-8 continuation bytes are >= 0x80), so a native search finds the pretty-printed
 * events without the scanner tracking whitespace kinds; compact pages cost one failed search per byte value.
 */
function markNewlines(b: Buffer, offsets: Uint32Array, flags: Uint8Array, count: number): void {
  for (const nl of [LF, CR]) {
    let i = 0;
    let at = b.indexOf(nl);
    while (at >= 0 && i < count) {
      while (i < count && (offsets[2 * i + 1] as number) <= at) i++;
      if (i === count) break;
      const start = offsets[2 * i] as number;
      if (start <= at) {
        flags[i] = (flags[i] as number) | SpanFlag.NEWLINE;
        at = b.indexOf(nl, offsets[2 * i + 1] as number);
        i++;
      } else {
        at = b.indexOf(nl, start);
      }
    }
  }
}

function checkIndex(spans: EventSpans, i: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= spans.count) {
    throw new RangeError(`event index ${i} is outside the page (${spans.count} events)`);
  }
}

/** Parses event i of a scanned page. */
export function parseEvent(body: Buffer, spans: EventSpans, i: number): JsonObject {
  checkIndex(spans, i);
  const { offsets } = spans;
  return JSON.parse(body.toString('utf8', offsets[2 * i], offsets[2 * i + 1])) as JsonObject;
}

/** `uuid` and `published` of event i; null for a field that is missing or not a string. */
export function eventRef(body: Buffer, spans: EventSpans, i: number): EventRef {
  const event = parseEvent(body, spans, i);
  const uuid = Object.hasOwn(event, 'uuid') ? event.uuid : undefined;
  const published = Object.hasOwn(event, 'published') ? event.published : undefined;
  return {
    uuid: typeof uuid === 'string' ? uuid : null,
    published: typeof published === 'string' ? published : null,
  };
}

/** The tags as `"k":v,...` members, serialised once per page. */
function tagMembers(tags: Readonly<Record<string, JsonValue>>): string {
  return Object.keys(tags)
    .map((k) => `${JSON.stringify(k)}:${JSON.stringify(tags[k]) ?? 'null'}`)
    .join(',');
}

/** `{...event minus tag keys, ...tags}` as one NDJSON line; tags override and go last. */
function taggedLine(event: JsonObject, tagKeys: readonly string[], members: string): string {
  let source = event;
  if (tagKeys.some((k) => Object.hasOwn(event, k))) {
    source = { ...event };
    for (const k of tagKeys) delete source[k];
  }
  const json = JSON.stringify(source);
  if (members === '') return json + '\n';
  return json === '{}' ? `{${members}}\n` : `${json.slice(0, -1)},${members}}\n`;
}

export interface RenderOptions {
  /** Which events to write; every event when absent. */
  keep?: (i: number) => boolean;
  /** What a page transform did to each event (dropped ones are not written). */
  edits?: TransformedEvents;
  /** Returns the `size` bytes to render into (a reused buffer); a fresh buffer when absent. */
  output?: (size: number) => Buffer;
  /**
   * Receives where the scan found each line's per-event fields in the NDJSON (for `batchFromNdjson`), when
   * the spans carry them. Lines serialised again (a replaced event, a tag key clash) are left to be read.
   */
  fields?: { known?: KnownFields };
}

/**
 * The page's events as NDJSON, each line the event's bytes exactly as received with `tags` spliced in
 * before its closing brace. Pretty-printed events have their LF/CR whitespace turned into spaces (same
 * length, every token untouched). An event that already has a top-level key equal to a tag key is parsed
 * and serialised again with the tag overriding it, since its bytes cannot be kept without a duplicate key.
 */
export function renderNdjson(
  body: Buffer,
  spans: EventSpans,
  tags: Readonly<Record<string, JsonValue>>,
  options: RenderOptions = {},
): Buffer {
  const { count, offsets, flags, keyMasks } = spans;
  const keep = options.keep;
  const tagKeys = Object.keys(tags);
  const members = tagMembers(tags);
  const tail = Buffer.from(members === '' ? '}\n' : `,${members}}\n`);
  // `{}` takes the members without the leading comma.
  const emptyTail = members === '' ? tail : tail.subarray(1);
  // An event whose raw top-level keys cannot start like any tag key, and has no escaped top-level key
  // (whose raw bytes prove nothing), cannot already hold a tag: only the others are parsed to decide.
  let tagMask = 0;
  for (const k of tagKeys) tagMask |= 1 << ((Buffer.from(JSON.stringify(k))[1] as number) & 31);

  const edits = options.edits;
  if (edits !== undefined && edits.edits.length !== count) {
    throw new OktailError(
      'SCRIPT_ERROR',
      `transform returned ${edits.edits.length} results for ${count} events`,
      true,
    );
  }

  // 0: skip, 1: splice bytes, 2: re-serialised line in `rewritten`, 3: splice bytes and `added[i]`.
  const plan = new Uint8Array(count);
  let rewritten: (Buffer | undefined)[] | undefined;
  let added: (Buffer | undefined)[] | undefined;
  let total = 0;
  for (let i = 0; i < count; i++) {
    if (keep !== undefined && !keep(i)) continue;
    const edit = edits?.edits[i] ?? EventEdit.UNCHANGED;
    if (edit === EventEdit.DROPPED) continue;
    if (edit === EventEdit.REPLACED) {
      // Tag keys were left out by the transform: the tags just go last.
      const json = edits!.text[i] ?? '{}';
      const line = Buffer.from(
        members === ''
          ? `${json}\n`
          : json === '{}'
            ? `{${members}}\n`
            : `${json.slice(0, -1)},${members}}\n`,
      );
      (rewritten ??= [])[i] = line;
      plan[i] = 2;
      total += line.length;
      continue;
    }
    const extra = edit === EventEdit.ADDED ? (edits!.text[i] ?? '') : '';
    if (
      tagMask !== 0 &&
      (((keyMasks[i] as number) & tagMask) !== 0 || ((flags[i] as number) & SpanFlag.ESCAPED_KEY) !== 0)
    ) {
      const event = parseEvent(body, spans, i);
      if (tagKeys.some((k) => Object.hasOwn(event, k))) {
        if (extra !== '') Object.assign(event, JSON.parse(`{${extra}}`));
        const line = Buffer.from(taggedLine(event, tagKeys, members));
        (rewritten ??= [])[i] = line;
        plan[i] = 2;
        total += line.length;
        continue;
      }
    }
    const empty = ((flags[i] as number) & SpanFlag.EMPTY) !== 0;
    const size = (offsets[2 * i + 1] as number) - (offsets[2 * i] as number) - 1;
    if (extra !== '') {
      // `,"k":v` after the event's own members; the tail then starts with its own comma.
      const more = Buffer.from(empty ? extra : `,${extra}`);
      (added ??= [])[i] = more;
      plan[i] = 3;
      total += size + more.length + tail.length;
      continue;
    }
    plan[i] = 1;
    total += size + (empty ? emptyTail.length : tail.length);
  }

  const out = options.output ? options.output(total) : Buffer.allocUnsafe(total);
  if (out.length !== total) throw new RangeError(`output buffer of ${out.length} bytes for ${total}`);
  const { fieldFrom, fieldTo, fieldEscaped } = spans;
  let known: KnownFields | undefined;
  if (options.fields && fieldFrom && fieldTo && fieldEscaped) {
    let lines = 0;
    for (let i = 0; i < count; i++) if (plan[i] !== 0) lines++;
    known = {
      from: new Uint32Array(lines * FIELD_COUNT),
      to: new Uint32Array(lines * FIELD_COUNT),
      escaped: new Uint8Array(lines * FIELD_COUNT),
    };
    options.fields.known = known;
  }
  let o = 0;
  let line = 0;
  for (let i = 0; i < count; i++) {
    const p = plan[i];
    if (p === 0) continue;
    if (p === 2) {
      const bytes = (rewritten as Buffer[])[i] as Buffer;
      bytes.copy(out, o);
      o += bytes.length;
      if (known) known.from.fill(UNKNOWN, line * FIELD_COUNT, (line + 1) * FIELD_COUNT);
      line++;
      continue;
    }
    const start = offsets[2 * i] as number;
    const end = (offsets[2 * i + 1] as number) - 1;
    const f = flags[i] as number;
    if (known) {
      // The line holds the event's bytes from `start` on, unmoved: only the tags (and fields a transform
      // added) follow them, after every field the scan found.
      const shift = o - start;
      const escaped = fieldEscaped![i] as number;
      for (let k = 0; k < FIELD_COUNT; k++) {
        const slot = line * FIELD_COUNT + k;
        const from = fieldFrom![i * FIELD_COUNT + k] as number;
        if (from === 0) {
          // Fields a transform added follow the event's own: they may hold one the event lacked.
          known.from[slot] = p === 3 ? UNKNOWN : ABSENT;
          continue;
        }
        known.from[slot] = from + shift;
        known.to[slot] = (fieldTo![i * FIELD_COUNT + k] as number) + shift;
        if ((escaped & (1 << k)) !== 0) known.escaped[slot] = 1;
      }
    }
    line++;
    body.copy(out, o, start, end);
    if ((f & SpanFlag.NEWLINE) !== 0) {
      for (let k = o; k < o + end - start; k++) {
        if (out[k] === LF || out[k] === CR) out[k] = SPACE;
      }
    }
    o += end - start;
    let t = (f & SpanFlag.EMPTY) !== 0 ? emptyTail : tail;
    if (p === 3) {
      const more = (added as Buffer[])[i] as Buffer;
      more.copy(out, o);
      o += more.length;
      t = tail;
    }
    // A byte loop beats a native copy call for a fragment of a few dozen bytes.
    for (let k = 0; k < t.length; k++) out[o + k] = t[k] as number;
    o += t.length;
  }
  return out;
}

/** Parsed (possibly transformed) events as NDJSON with `tags`, for pages that went through a script. */
export function renderObjects(
  objects: readonly JsonObject[],
  tags: Readonly<Record<string, JsonValue>>,
): Buffer {
  const tagKeys = Object.keys(tags);
  const members = tagMembers(tags);
  const lines = new Array<string>(objects.length);
  for (let i = 0; i < objects.length; i++) {
    const event = objects[i];
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      throw new OktailError('SCRIPT_ERROR', `event ${i} is not an object`);
    }
    lines[i] = taggedLine(event, tagKeys, members);
  }
  return Buffer.from(lines.join(''));
}
