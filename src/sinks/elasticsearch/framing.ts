/*
 * Elasticsearch `_bulk` bodies and response classification: pure functions, no I/O.
 *
 * Every event is a `create` with `_id` = the event's Okta uuid, so a batch sent twice (a retry, or a
 * replay after a crash) cannot store an event twice: the second `create` answers 409, which means "it is
 * already there". The source line is the event's own bytes, spliced in, never re-serialised.
 */

import type { SinkItems } from '../shared/network-sink.js';

/** What framing needs of a request's events (a subset of the shared helper's `SinkItems`). */
export type BulkFramingItems = Pick<
  SinkItems,
  'length' | 'uuid' | 'publishedMs' | 'byteLength' | 'copyBytes'
>;

/**
 * Index name template: literal text plus strftime fields of each event's `published`, in UTC, given as
 * the text or as epoch milliseconds (NaN or null: absent, the current time counts).
 */
export type IndexTemplate = (published: string | number | null) => string;

const FIELDS: Record<string, (d: Date) => string> = {
  Y: (d) => String(d.getUTCFullYear()).padStart(4, '0'),
  m: (d) => String(d.getUTCMonth() + 1).padStart(2, '0'),
  d: (d) => String(d.getUTCDate()).padStart(2, '0'),
  H: (d) => String(d.getUTCHours()).padStart(2, '0'),
  j: (d) =>
    String(Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1).padStart(3, '0'),
  G: (d) => String(isoWeek(d).year),
  V: (d) => String(isoWeek(d).week).padStart(2, '0'),
};

/** Characters Elasticsearch refuses in index names (besides upper case). */
const INVALID_INDEX_CHARS = /[\\/*?"<>| ,#:]/;

/** Why `template` cannot name Elasticsearch indices, or null when it can. */
export function indexTemplateProblem(template: string): string | null {
  const literal = template.replace(/%(.)/g, (_m, field: string) => (field === '%' ? '%' : 'x'));
  const unknown = [...template.matchAll(/%(.?)/g)].map((m) => m[1]).find((f) => f !== '%' && !(f! in FIELDS));
  if (unknown !== undefined) {
    return `unknown field %${unknown}: use %Y, %m, %d, %H, %j, %G, %V or %%`;
  }
  if (template === '') return 'must not be empty';
  if (literal !== literal.toLowerCase()) return 'must be lower case (Elasticsearch index names are)';
  if (INVALID_INDEX_CHARS.test(literal)) return 'must not contain \\ / * ? " < > | space , # or :';
  if (/^[-_+.]/.test(literal)) return 'must not start with -, _, + or .';
  if (Buffer.byteLength(literal) > 255) return 'must be at most 255 bytes';
  return null;
}

/**
 * Compiles `template`. An event without a parsable `published` goes to the index of `now()`; Okta
 * always sets `published`, so this only matters for events a collection script made up.
 */
export function compileIndexTemplate(template: string, now: () => number = Date.now): IndexTemplate {
  const parts: (string | ((d: Date) => string))[] = [];
  let literal = '';
  for (let i = 0; i < template.length; i++) {
    const ch = template[i]!;
    if (ch !== '%') {
      literal += ch;
      continue;
    }
    const field = template[++i] ?? '';
    if (field === '%') {
      literal += '%';
      continue;
    }
    const fn = FIELDS[field];
    if (fn === undefined) throw new Error(`index template: unknown field %${field}`);
    if (literal) parts.push(literal);
    literal = '';
    parts.push(fn);
  }
  if (literal) parts.push(literal);
  if (parts.every((p) => typeof p === 'string')) {
    const fixed = parts.join('');
    return () => fixed;
  }
  // Batches hold runs of events from the same hour: remember the last rendering per hour.
  let lastHour = NaN;
  let lastName = '';
  return (published) => {
    let ms = typeof published === 'number' ? published : published === null ? NaN : Date.parse(published);
    if (!Number.isFinite(ms)) ms = now();
    const hour = Math.floor(ms / 3_600_000);
    if (hour === lastHour) return lastName;
    const d = new Date(hour * 3_600_000);
    lastName = parts.map((p) => (typeof p === 'string' ? p : p(d))).join('');
    lastHour = hour;
    return lastName;
  };
}

function isoWeek(d: Date): { year: number; week: number } {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  return { year: t.getUTCFullYear(), week: Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7) };
}

/**
 * The NDJSON body of one `_bulk` request: a `create` action line and the event's bytes per event, written
 * into one buffer with the events' bytes copied straight from their pages. Action lines are written piece
 * by piece rather than as a string per event: a request is framed while earlier ones are in flight, and
 * strings made per event lived long enough to fill the old generation.
 */
export function buildBulkBody(items: BulkFramingItems, indexFor: IndexTemplate): Buffer {
  // `{"create":{"_index":"name"` per run of events sharing an index, then `,"_id":"uuid"` and `}}\n`.
  const heads: Buffer[] = new Array<Buffer>(items.length);
  const ids: (string | null)[] = new Array<string | null>(items.length);
  const plainIds = new Uint8Array(items.length);
  let total = 0;
  let lastIndex: string | null = null;
  let head = Buffer.alloc(0);
  for (let i = 0; i < items.length; i++) {
    const index = indexFor(items.publishedMs(i));
    if (index !== lastIndex) {
      lastIndex = index;
      head = Buffer.from(`{"create":{"_index":${JSON.stringify(index)}`);
    }
    heads[i] = head;
    let size = head.length + ACTION_CLOSE.length + items.byteLength(i) + 1;
    const uuid = items.uuid(i);
    if (uuid !== null) {
      // Okta's uuids need no escaping: written between quotes as they are; anything else is JSON-encoded.
      const plain = PLAIN_ID.test(uuid);
      const id = plain ? uuid : JSON.stringify(uuid);
      ids[i] = id;
      plainIds[i] = plain ? 1 : 0;
      size += ID_KEY.length + (plain ? uuid.length + 2 : Buffer.byteLength(id));
    } else ids[i] = null;
    total += size;
  }
  const body = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < items.length; i++) {
    at += (heads[i] as Buffer).copy(body, at);
    const id = ids[i];
    if (id !== null && id !== undefined) {
      at += ID_KEY.copy(body, at);
      if (plainIds[i] === 1) {
        body[at++] = 0x22;
        at += body.write(id, at, 'latin1');
        body[at++] = 0x22;
      } else at += body.write(id, at, 'utf8');
    }
    at += ACTION_CLOSE.copy(body, at);
    at += items.copyBytes(i, body, at);
    body[at++] = 0x0a;
  }
  return body;
}

const ID_KEY = Buffer.from(',"_id":');
const ACTION_CLOSE = Buffer.from('}}\n');
/** Printable ASCII without `"` or `\\`: the bytes JSON needs no escape for. */
const PLAIN_ID = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** The same shape as the shared helper's `SendOutcome`. */
export type BulkOutcome =
  | { kind: 'ok' }
  | { kind: 'partial'; failed: { index: number; retryable: boolean; reason: string }[] }
  | { kind: 'retry'; reason: string; message: string; retryAfterMs?: number }
  | { kind: 'split'; message: string }
  | { kind: 'permanent'; message: string };

interface BulkItemResult {
  status?: unknown;
  error?: { type?: unknown; reason?: unknown; caused_by?: { type?: unknown; reason?: unknown } };
  _index?: unknown;
}

/**
 * What to do about a `_bulk` answer. Per item: 2xx stored; 409 `version_conflict_engine_exception`
 * means an earlier attempt stored it (success: `create` never overwrites); 429 and 5xx are retried alone;
 * any other failure (a mapping conflict, an invalid index name) is permanent and names the event.
 */
export function classifyBulkResponse(
  status: number,
  body: string,
  items: Pick<SinkItems, 'length' | 'uuid'>,
  retryAfterMs?: number,
): BulkOutcome {
  const ok = status >= 200 && status < 300;
  // A 2xx body is the bulk answer itself, parsed below; only a failure's body is an error to quote.
  const error = ok ? '' : errorText(body);
  const said = `Elasticsearch answered ${status}${error ? ` ${error}` : ''}`;
  if (status === 413)
    return { kind: 'split', message: `${said}: the request is larger than http.max_content_length` };
  if (status === 401) {
    return { kind: 'permanent', message: `${said}: check the sink's auth (user and password, or api_key)` };
  }
  if (status === 403) {
    return {
      kind: 'permanent',
      message: `${said}: the user or API key needs the create_doc (or create_index) privilege on the target indices`,
    };
  }
  if (status === 408 || status === 429 || status >= 500) {
    const outcome: BulkOutcome = { kind: 'retry', reason: `status_${status}`, message: said };
    if (retryAfterMs !== undefined) outcome.retryAfterMs = retryAfterMs;
    return outcome;
  }
  if (!ok) {
    return { kind: 'permanent', message: `${said}: is the endpoint an Elasticsearch or OpenSearch node?` };
  }
  if (allCreated(body, items.length)) return { kind: 'ok' };
  let parsed: { errors?: unknown; items?: unknown };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    return {
      kind: 'retry',
      reason: 'bad_response',
      message: `${said} ${errorText(body)} with a body that is not JSON; will resend`,
    };
  }
  if (!Array.isArray(parsed.items) || parsed.items.length !== items.length) {
    return {
      kind: 'retry',
      reason: 'bad_response',
      message: `${said} with ${Array.isArray(parsed.items) ? parsed.items.length : 'no'} items for ${items.length} sent; will resend`,
    };
  }
  if (parsed.errors === false) return { kind: 'ok' };
  const failed: { index: number; retryable: boolean; reason: string }[] = [];
  for (const [i, entry] of (parsed.items as Record<string, BulkItemResult>[]).entries()) {
    const result = entry && typeof entry === 'object' ? Object.values(entry)[0] : undefined;
    const itemStatus = typeof result?.status === 'number' ? result.status : 0;
    if (itemStatus >= 200 && itemStatus < 300) continue;
    const type = typeof result?.error?.type === 'string' ? result.error.type : 'unknown';
    if (itemStatus === 409 && type === 'version_conflict_engine_exception') continue;
    const reason = typeof result?.error?.reason === 'string' ? result.error.reason : 'no reason given';
    const cause =
      typeof result?.error?.caused_by?.reason === 'string'
        ? ` (caused by: ${result.error.caused_by.reason})`
        : '';
    const uuid = items.uuid(i) ?? '(no uuid)';
    const index = typeof result?._index === 'string' ? ` in index ${result._index}` : '';
    const retryable = itemStatus === 429 || itemStatus >= 500 || itemStatus === 0;
    failed.push({
      index: i,
      retryable,
      reason: `event ${uuid}${index}: ${itemStatus} ${type}: ${reason}${cause}${retryable ? '' : itemFix(type)}`,
    });
  }
  return failed.length === 0 ? { kind: 'ok' } : { kind: 'partial', failed };
}

/**
 * Whether a `_bulk` answer says, before its items, that none failed, and holds one `create` result per
 * event: the common answer, read without building an object per item. A JSON string cannot hold the
 * tokens searched for unescaped, so they are structure. Anything else is parsed in full.
 */
function allCreated(body: string, expected: number): boolean {
  const itemsAt = body.indexOf('"items":[');
  if (!body.startsWith('{') || itemsAt < 0 || !body.trimEnd().endsWith(']}')) return false;
  const errorsAt = body.indexOf('"errors":false');
  if (errorsAt < 0 || errorsAt > itemsAt) return false;
  let count = 0;
  for (let at = body.indexOf('{"create":{', itemsAt); at >= 0; at = body.indexOf('{"create":{', at + 11))
    count++;
  return count === expected;
}

function itemFix(type: string): string {
  if (type === 'mapper_parsing_exception' || type === 'document_parsing_exception') {
    return ' - the index mapping does not fit Okta events: fix the mapping or index template for these fields, or send to another index';
  }
  if (type === 'invalid_index_name_exception') return " - fix the sink's index template";
  if (type === 'index_not_found_exception') {
    return ' - create the index (or an index template), or allow automatic index creation';
  }
  if (type === 'security_exception') return ' - grant the create_doc privilege on the index';
  return '';
}

/** `type: reason` of an Elasticsearch error body, or a short excerpt of a body that is not one. */
function errorText(body: string): string {
  if (body.trim() === '') return '';
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    const error = parsed.error;
    if (typeof error === 'string') return `"${error}"`;
    if (error && typeof error === 'object') {
      const e = error as { type?: unknown; reason?: unknown };
      return `${String(e.type)}: ${String(e.reason)}`;
    }
    return '';
  } catch {
    const text = body.trim().replace(/\s+/g, ' ');
    return JSON.stringify(text.length > 120 ? text.slice(0, 120) + '...' : text);
  }
}
