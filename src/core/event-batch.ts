import type { EventBatch } from './sink.js';

const LF = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;

/** Top-level fields every batch carries per event. */
const FIELDS = ['uuid', 'published', 'eventType', 'severity'] as const;
type Field = (typeof FIELDS)[number];
const FIELD_KEYS = FIELDS.map((f) => Buffer.from(`"${f}"`));

/**
 * A batch over NDJSON whose lines are single JSON objects (every "\n" ends an event: the renderer turns a
 * pretty-printed event's line breaks into spaces). The per-event fields are read on first use, so a sink
 * that only writes bytes (file, stdout) never pays for them.
 */
export function batchFromNdjson(source: string, domain: string, data: Buffer): EventBatch {
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
  let fields: Record<Field, (string | null)[]> | null = null;
  const read = (field: Field): (string | null)[] => {
    fields ??= readFields(data, starts, ends);
    return fields[field];
  };
  return {
    source,
    domain,
    count,
    data,
    starts,
    ends,
    get uuids() {
      return read('uuid');
    },
    get published() {
      return read('published');
    },
    get eventTypes() {
      return read('eventType');
    },
    get severities() {
      return read('severity');
    },
  };
}

function readFields(data: Buffer, starts: Uint32Array, ends: Uint32Array): Record<Field, (string | null)[]> {
  const out: Record<Field, (string | null)[]> = { uuid: [], published: [], eventType: [], severity: [] };
  for (let i = 0; i < starts.length; i++) {
    const found = topLevelStrings(data, starts[i] as number, ends[i] as number);
    for (const f of FIELDS) out[f].push(found[f] ?? null);
  }
  return out;
}

/**
 * The four fields' string values at the top level of one JSON object (valid JSON, already checked by
 * the page scanner). A walk over the bytes: nested objects and arrays are skipped by depth, so a
 * `uuid` inside `target` never counts. Values that are not strings count as absent.
 */
function topLevelStrings(data: Buffer, start: number, end: number): Partial<Record<Field, string>> {
  const found: Partial<Record<Field, string>> = {};
  let depth = 0;
  let expectKey = false;
  let pendingField: Field | null = null;
  let i = start;
  while (i < end) {
    const c = data[i] as number;
    if (c === QUOTE) {
      const from = i;
      i++;
      let escaped = false;
      while (i < end) {
        const d = data[i] as number;
        if (d === BACKSLASH) {
          escaped = true;
          i += 2;
          continue;
        }
        if (d === QUOTE) break;
        i++;
      }
      const to = i + 1; // just after the closing quote
      if (depth === 1 && expectKey) {
        pendingField = null;
        for (let f = 0; f < FIELDS.length; f++) {
          const key = FIELD_KEYS[f] as Buffer;
          if (to - from === key.length && data.compare(key, 0, key.length, from, to) === 0) {
            pendingField = FIELDS[f] as Field;
          }
        }
        expectKey = false;
      } else if (depth === 1 && pendingField !== null) {
        const raw = data.toString('utf8', from, to);
        found[pendingField] = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        pendingField = null;
      }
      i = to;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      if (depth === 1) expectKey = true;
      else if (depth === 2) pendingField = null;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    } else if (depth === 1 && c === 0x2c) {
      expectKey = true;
      pendingField = null;
    } else if (depth === 1 && pendingField !== null && c > 0x20 && c !== COLON) {
      // A number, true, false or null: not a string.
      pendingField = null;
    }
    i++;
  }
  return found;
}
