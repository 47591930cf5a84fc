import { EventEdit, type RawEvents, type TransformedEvents } from '../core/collection-logic.js';
import type { JsonObject, JsonValue } from '../core/json.js';

/** Parsed events as a raw page, for callers that hold objects (the object form of `transform`). */
export function encodeEvents(events: readonly JsonObject[]): RawEvents {
  const texts = events.map((e) => JSON.stringify(e));
  const offsets = new Uint32Array(events.length * 2);
  let position = 1;
  for (let i = 0; i < texts.length; i++) {
    offsets[2 * i] = position;
    position += Buffer.byteLength(texts[i]!);
    offsets[2 * i + 1] = position;
    position += 1;
  }
  return { body: Buffer.from(`[${texts.join(',')}]`), offsets, count: events.length };
}

/** The events a page transform kept, parsed, with null for the dropped ones. */
export function decodeTransformed(raw: RawEvents, result: TransformedEvents): (JsonObject | null)[] {
  const bytes = result.body ?? raw.body;
  const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: (JsonObject | null)[] = [];
  for (let i = 0; i < raw.count; i++) {
    const original = (): string => body.toString('utf8', raw.offsets[2 * i], raw.offsets[2 * i + 1]);
    switch (result.edits[i]) {
      case EventEdit.DROPPED:
        out.push(null);
        break;
      case EventEdit.UNCHANGED:
        out.push(JSON.parse(original()) as JsonObject);
        break;
      case EventEdit.ADDED:
        out.push(JSON.parse(spliceMembers(original(), result.text[i] ?? '')) as JsonObject);
        break;
      default:
        out.push(JSON.parse(result.text[i] ?? 'null') as JsonObject);
    }
  }
  return out;
}

/** `{...}` with `members` added before its closing brace. */
export function spliceMembers(object: string, members: string): string {
  if (members === '') return object;
  const body = object.slice(0, object.lastIndexOf('}'));
  return /^\{\s*$/.test(body) ? `${body}${members}}` : `${body},${members}}`;
}

/** Structural equality of two JSON values (object key order aside). */
export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) {
    if (!Object.hasOwn(b, k) || !jsonEqual(a[k], b[k])) return false;
  }
  return true;
}
