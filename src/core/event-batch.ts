import type { EventBatch } from './sink.js';

const LF = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;

/** Top-level fields every batch carries per event, by their index in `EventFields`' columns. */
export const UUID = 0;
export const PUBLISHED = 1;
export const EVENT_TYPE = 2;
export const SEVERITY = 3;
export const FIELD_COUNT = 4;

/** Position meaning "the whole event was read": every field not found is absent. */
const DONE = 0xffffffff;

/**
 * The per-event fields of a batch, each read from the original bytes on first use and only as far into
 * the event as that field lies: a sink that needs no field (http, file) never walks an event, and one that
 * needs `published` stops there. Sinks reach it through `eventFields(batch)`.
 */
export interface EventFields {
  uuid(i: number): string | null;
  published(i: number): string | null;
  /** `published` as epoch milliseconds; NaN when absent or not a date. */
  publishedMs(i: number): number;
  eventType(i: number): string | null;
  severity(i: number): string | null;
}

/**
 * Where the per-event fields of each NDJSON line lie, as far as whoever rendered the lines already knows
 * (the Okta source's page scan walks every event's top level anyway). At `[line * FIELD_COUNT + field]`:
 * `from`/`to` bound the string value's bytes between its quotes in the NDJSON, `from` UNKNOWN when the
 * line must be read on first use, ABSENT when the event has no such string field; `escaped` 1 when the
 * value holds a backslash escape.
 */
export interface KnownFields {
  readonly from: Uint32Array;
  readonly to: Uint32Array;
  readonly escaped: Uint8Array;
}

/**
 * A batch over NDJSON whose lines are single JSON objects (every "\n" ends an event: the renderer turns a
 * pretty-printed event's line breaks into spaces). The per-event fields are read on first use, so a sink
 * that only writes bytes (file, stdout, http) never pays for them, unless `known` already has them.
 */
export function batchFromNdjson(
  source: string,
  domain: string,
  data: Buffer,
  known?: KnownFields,
): EventBatch {
  let count = 0;
  for (let i = data.indexOf(LF); i !== -1; i = data.indexOf(LF, i + 1)) count++;
  const starts = new Uint32Array(count);
  const ends = new Uint32Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const nl = data.indexOf(LF, at);
    starts[i] = at;
    ends[i] = nl;
    at = nl + 1;
  }
  if (known !== undefined && known.from.length !== count * FIELD_COUNT) {
    throw new RangeError(`known fields for ${known.from.length / FIELD_COUNT} lines, not ${count}`);
  }
  const fields = new LazyFields(data, starts, ends, known);
  let columns: (string | null)[][] | null = null;
  const column = (field: number): (string | null)[] => {
    columns ??= fields.columns();
    return columns[field] as (string | null)[];
  };
  const batch: EventBatch = {
    source,
    domain,
    count,
    data,
    starts,
    ends,
    get uuids() {
      return column(UUID);
    },
    get published() {
      return column(PUBLISHED);
    },
    get eventTypes() {
      return column(EVENT_TYPE);
    },
    get severities() {
      return column(SEVERITY);
    },
  };
  readers.set(batch, fields);
  return batch;
}

/** Bytes events `from` to `to` (exclusive) take as NDJSON: each event and its newline. */
export function ndjsonBytes(batch: EventBatch, from = 0, to = batch.count): number {
  let bytes = 0;
  for (let i = from; i < to; i++) bytes += (batch.ends[i] as number) - (batch.starts[i] as number) + 1;
  return bytes;
}

/** Whether events `from` to `to` (exclusive) lie one after the other, each followed by its newline. */
export function isContiguous(batch: EventBatch, from = 0, to = batch.count): boolean {
  const { data, starts, ends } = batch;
  for (let i = from; i < to; i++) {
    const end = ends[i] as number;
    if (data[end] !== LF || (i + 1 < to && starts[i + 1] !== end + 1)) return false;
  }
  return true;
}

/** The batch's NDJSON as a view of its own bytes when its events lie one after the other, else null. */
export function ndjsonView(batch: EventBatch): Buffer | null {
  if (batch.count === 0 || !isContiguous(batch)) return null;
  return batch.data.subarray(batch.starts[0], (batch.ends[batch.count - 1] as number) + 1);
}

/**
 * Copies the batch's events as NDJSON into `out` at `at` (it needs `ndjsonBytes(batch)` bytes of room) and
 * returns the bytes copied: a page's own bytes are reused once the next page is fetched.
 */
export function copyNdjson(batch: EventBatch, out: Buffer, at = 0): number {
  const view = ndjsonView(batch);
  if (view) return view.copy(out, at);
  const { data, starts, ends } = batch;
  let to = at;
  for (let i = 0; i < batch.count; i++) {
    to += data.copy(out, to, starts[i], ends[i]);
    out[to++] = LF;
  }
  return to - at;
}

/** A batch over a copy of `batch`'s events, valid for as long as it is kept. */
export function copyBatch(batch: EventBatch): EventBatch {
  const copy = Buffer.allocUnsafe(ndjsonBytes(batch));
  copyNdjson(batch, copy);
  return batchFromNdjson(batch.source, batch.domain, copy);
}

const readers = new WeakMap<EventBatch, EventFields>();

/**
 * Per-event field access for `batch`: lazy for batches made by `batchFromNdjson`, over the batch's arrays
 * for any other.
 */
export function eventFields(batch: EventBatch): EventFields {
  const lazy = readers.get(batch);
  if (lazy) return lazy;
  return {
    uuid: (i) => batch.uuids[i] ?? null,
    published: (i) => batch.published[i] ?? null,
    publishedMs: (i) => parseTimestamp(batch.published[i] ?? null),
    eventType: (i) => batch.eventTypes[i] ?? null,
    severity: (i) => batch.severities[i] ?? null,
  };
}

/** A field's position before it was looked for, and once known absent (not there, or not a string). */
export const UNKNOWN = 0xffffffff;
export const ABSENT = 0xfffffffe;

class LazyFields implements EventFields {
  readonly #data: Buffer;
  readonly #starts: Uint32Array;
  readonly #ends: Uint32Array;
  /**
   * Where field f of event i lies, at [i * FIELD_COUNT + f]: the string value's bytes between its quotes
   * (or UNKNOWN, ABSENT). Positions, not strings: a batch lives until every sink answered, and strings
   * kept that long outlive the young generation, which makes every collection dearer. A string is made
   * per call and dies young.
   */
  readonly #from: Uint32Array;
  readonly #to: Uint32Array;
  /** 1 where the value holds an escape and must be decoded as JSON. */
  readonly #escaped: Uint8Array;
  /** Where reading event i resumes (0: not started; DONE: read to its end). */
  readonly #resume: Uint32Array;

  constructor(data: Buffer, starts: Uint32Array, ends: Uint32Array, known?: KnownFields) {
    this.#data = data;
    this.#starts = starts;
    this.#ends = ends;
    // A line whose fields are known never reaches #readUntil: each of its slots is a position or ABSENT.
    this.#from = known?.from ?? new Uint32Array(starts.length * FIELD_COUNT).fill(UNKNOWN);
    this.#to = known?.to ?? new Uint32Array(starts.length * FIELD_COUNT);
    this.#escaped = known?.escaped ?? new Uint8Array(starts.length * FIELD_COUNT);
    this.#resume = new Uint32Array(starts.length);
  }

  uuid(i: number): string | null {
    return this.#get(i, UUID);
  }

  published(i: number): string | null {
    return this.#get(i, PUBLISHED);
  }

  publishedMs(i: number): number {
    if (i < 0 || i >= this.#starts.length) return NaN;
    const slot = i * FIELD_COUNT + PUBLISHED;
    if (this.#from[slot] === UNKNOWN) this.#readUntil(i, PUBLISHED);
    const from = this.#from[slot] as number;
    if (from === ABSENT || from === UNKNOWN) return NaN;
    // Read from the bytes: a string per event only to parse it cost sinks more than framing the event.
    if (this.#escaped[slot] !== 1) {
      const ms = isoMillis(this.#data, from, this.#to[slot] as number);
      if (ms !== null) return ms;
    }
    return parseTimestamp(this.#get(i, PUBLISHED));
  }

  eventType(i: number): string | null {
    return this.#get(i, EVENT_TYPE);
  }

  severity(i: number): string | null {
    return this.#get(i, SEVERITY);
  }

  /** Every field of every event, as the batch's array properties present them. */
  columns(): (string | null)[][] {
    const out: (string | null)[][] = [[], [], [], []];
    for (let i = 0; i < this.#starts.length; i++) {
      for (let f = 0; f < FIELD_COUNT; f++) (out[f] as (string | null)[]).push(this.#get(i, f));
    }
    return out;
  }

  #get(i: number, field: number): string | null {
    if (i < 0 || i >= this.#starts.length) return null;
    const slot = i * FIELD_COUNT + field;
    if (this.#from[slot] === UNKNOWN) this.#readUntil(i, field);
    const from = this.#from[slot] as number;
    if (from === ABSENT || from === UNKNOWN) return null;
    const to = this.#to[slot] as number;
    return this.#escaped[slot] === 1
      ? (JSON.parse(this.#data.toString('utf8', from - 1, to + 1)) as string)
      : this.#data.toString('utf8', from, to);
  }

  /**
   * Walks event i's top level from where the last read stopped until `field` is found or the object
   * ends, noting every field met on the way. The bytes are valid JSON (the page scanner checked them);
   * anything unexpected ends the walk, leaving the fields not found absent. Nested objects and arrays
   * are skipped by depth, so a `uuid` inside `target` never counts, and a value that is not a string
   * counts as absent. Should a key repeat, its first value counts.
   */
  #readUntil(i: number, field: number): void {
    const d = this.#data;
    const end = this.#ends[i] as number;
    const base = i * FIELD_COUNT;
    const from = this.#from;
    let p = this.#resume[i] as number;
    if (p === DONE) {
      if (from[base + field] === UNKNOWN) from[base + field] = ABSENT;
      return;
    }
    if (p === 0) {
      p = this.#starts[i] as number;
      while (p < end && d[p] !== OPEN_BRACE) p++;
      p++;
    }
    let c = 0;
    for (;;) {
      // Before a key (or the closing brace): skip white space and the comma.
      while (p < end && (c = d[p] as number) !== QUOTE) {
        if (c === CLOSE_BRACE) p = end;
        else p++;
      }
      if (p >= end) break;
      const keyFrom = p + 1;
      p++;
      while (p < end && (c = d[p] as number) !== QUOTE) p += c === BACKSLASH ? 2 : 1;
      const id = topLevelFieldId(d, keyFrom, p);
      p++;
      while (p < end && d[p] !== COLON) p++;
      p++;
      while (p < end && ((c = d[p] as number) === 0x20 || c === 0x09 || c === 0x0d)) p++;
      if (p >= end) break;
      const first = id >= 0 && from[base + id] === UNKNOWN;
      if (c === QUOTE) {
        const valueFrom = p + 1;
        let escaped = false;
        p++;
        while (p < end && (c = d[p] as number) !== QUOTE) {
          if (c === BACKSLASH) {
            escaped = true;
            p += 2;
          } else p++;
        }
        if (p >= end) break;
        if (first) {
          from[base + id] = valueFrom;
          this.#to[base + id] = p;
          if (escaped) this.#escaped[base + id] = 1;
        }
        p++;
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        let depth = 1;
        p++;
        while (p < end && depth > 0) {
          c = d[p] as number;
          if (c === QUOTE) {
            p++;
            while (p < end && (c = d[p] as number) !== QUOTE) p += c === BACKSLASH ? 2 : 1;
          } else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
          else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
          p++;
        }
        if (first) from[base + id] = ABSENT;
      } else {
        // A number, true, false or null: not a string.
        while (p < end && (c = d[p] as number) !== COMMA && c !== CLOSE_BRACE) p++;
        if (first) from[base + id] = ABSENT;
      }
      if (id === field) {
        this.#resume[i] = p;
        return;
      }
    }
    this.#resume[i] = DONE;
    for (let f = 0; f < FIELD_COUNT; f++) if (from[base + f] === UNKNOWN) from[base + f] = ABSENT;
  }
}

const KEY_UUID = Buffer.from('uuid');
const KEY_PUBLISHED = Buffer.from('published');
const KEY_EVENT_TYPE = Buffer.from('eventType');
const KEY_SEVERITY = Buffer.from('severity');

/** Which of the four fields the key at d[from, to) (between its quotes, as raw bytes) names, or -1. */
export function topLevelFieldId(d: Buffer, from: number, to: number): number {
  const length = to - from;
  if (length === 4) return sameBytes(d, from, KEY_UUID) ? UUID : -1;
  if (length === 9) {
    if (d[from] === 0x70) return sameBytes(d, from, KEY_PUBLISHED) ? PUBLISHED : -1;
    return sameBytes(d, from, KEY_EVENT_TYPE) ? EVENT_TYPE : -1;
  }
  if (length === 8) return sameBytes(d, from, KEY_SEVERITY) ? SEVERITY : -1;
  return -1;
}

function sameBytes(d: Buffer, at: number, key: Buffer): boolean {
  for (let j = 0; j < key.length; j++) if (d[at + j] !== key[j]) return false;
  return true;
}

/** `Date.parse` of a `published` value; NaN for null. */
export function parseTimestamp(published: string | null): number {
  return published === null ? NaN : Date.parse(published);
}

/**
 * Epoch milliseconds of `YYYY-MM-DDTHH:MM:SS.mmmZ` (Okta's spelling of `published`) in `data[from, to)`;
 * null for any other spelling or an out-of-range part, which `Date.parse` then judges.
 */
export function isoMillis(data: Uint8Array, from: number, to: number): number | null {
  if (to - from !== 24) return null;
  if (
    data[from + 4] !== 0x2d ||
    data[from + 7] !== 0x2d ||
    data[from + 10] !== 0x54 ||
    data[from + 13] !== 0x3a ||
    data[from + 16] !== 0x3a ||
    data[from + 19] !== 0x2e ||
    data[from + 23] !== 0x5a
  ) {
    return null;
  }
  const year = digits(data, from, 4);
  const month = digits(data, from + 5, 2);
  const day = digits(data, from + 8, 2);
  const hour = digits(data, from + 11, 2);
  const minute = digits(data, from + 14, 2);
  const second = digits(data, from + 17, 2);
  const millis = digits(data, from + 20, 3);
  // Date.UTC carries an overflowing part into the next one, and reads years 0-99 as 1900-1999; Date.parse
  // refuses the one and not the other, so both are left to it.
  if (year < 100 || millis < 0 || hour < 0 || hour > 23 || minute < 0 || minute > 59) return null;
  if (second < 0 || second > 59 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) {
    return null;
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, millis);
}

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** The decimal number in `data[at, at + n)`; -1 when a byte is not a digit. */
function digits(data: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) {
    const d = (data[at + k] as number) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}
