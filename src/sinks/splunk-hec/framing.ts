/*
 * Splunk HEC request bodies and response classification: pure functions, no I/O.
 *
 * Each event goes into its own JSON envelope, and the envelopes are concatenated (HEC's `/event`
 * endpoint reads a stream of JSON objects). The event's bytes are spliced in as the `event` value, never
 * re-parsed and re-serialised, so Splunk indexes exactly what Okta sent (plus oktail's tag).
 */

import { decimalDigits, writeDecimal } from '../shared/decimal.js';
import type { SinkItems } from '../shared/network-sink.js';

/** What framing needs of a request's events (a subset of the shared helper's `SinkItems`). */
export type HecFramingItems = Pick<
  SinkItems,
  'length' | 'publishedMs' | 'source' | 'domain' | 'byteLength' | 'copyBytes'
>;

export interface HecEnvelopeFields {
  /** `source` metadata; null: the oktail source name of each event. */
  source: string | null;
  sourcetype: string;
  index: string | null;
}

/**
 * HEC's `time`: epoch seconds with milliseconds ("1732789234.123"), from Okta's `published`.
 * Null when the event has no parsable `published`; HEC then stamps the time it received the event.
 */
export function hecTime(published: string | null): string | null {
  if (published === null) return null;
  const ms = Date.parse(published);
  if (!Number.isFinite(ms)) return null;
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  return `${sign}${Math.floor(abs / 1000)}.${String(abs % 1000).padStart(3, '0')}`;
}

/**
 * The body of one `/services/collector/event` request: one envelope per event, newline-separated,
 * written into one buffer with the events' bytes copied straight from their pages. The envelope's
 * `time` is written digit by digit rather than as a string per event: a request is framed while earlier
 * ones are in flight, and strings made per event lived long enough to fill the old generation.
 */
export function buildEventBody(items: HecFramingItems, fields: HecEnvelopeFields): Buffer {
  // Most requests share host, source and the rest: encode the envelope's tail once per (domain, source),
  // and look it up only when they change (a request is mostly runs of one source's events).
  const tails = new Map<string, Buffer>();
  const heads: Buffer[] = new Array<Buffer>(items.length);
  // Epoch milliseconds of each event's `published`; NaN: no `time` (HEC stamps its own).
  const times = new Float64Array(items.length);
  let total = 0;
  let tail: Buffer | undefined;
  let tailDomain = '';
  let tailSource = '';
  for (let i = 0; i < items.length; i++) {
    const domain = items.domain(i);
    const source = items.source(i);
    if (tail === undefined || domain !== tailDomain || source !== tailSource) {
      tail = envelopeTail(tails, domain, source, fields);
      tailDomain = domain;
      tailSource = source;
    }
    heads[i] = tail;
    const ms = items.publishedMs(i);
    times[i] = ms;
    total += 1 + timeLength(ms) + tail.length + items.byteLength(i) + CLOSE.length;
  }
  const body = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < items.length; i++) {
    body[at++] = 0x7b; // {
    at = writeTime(body, at, times[i] as number);
    at += (heads[i] as Buffer).copy(body, at);
    at += items.copyBytes(i, body, at);
    body[at++] = 0x7d; // }
    body[at++] = 0x0a;
  }
  return body;
}

/** The envelope's members after `time`, up to `"event":`, for events of `domain` and `source`. */
function envelopeTail(
  tails: Map<string, Buffer>,
  domain: string,
  source: string,
  fields: HecEnvelopeFields,
): Buffer {
  const key = `${domain}\u0000${source}`;
  let tail = tails.get(key);
  if (tail === undefined) {
    tail = Buffer.from(
      `"host":${JSON.stringify(domain)},` +
        `"source":${JSON.stringify(fields.source ?? source)},` +
        `"sourcetype":${JSON.stringify(fields.sourcetype)},` +
        (fields.index === null ? '' : `"index":${JSON.stringify(fields.index)},`) +
        '"event":',
      'utf8',
    );
    tails.set(key, tail);
  }
  return tail;
}

const TIME_KEY = Buffer.from('"time":');

/** Bytes of `"time":<hecTime>,` for epoch ms `ms` (0 when NaN: the member is left out). */
function timeLength(ms: number): number {
  if (!Number.isFinite(ms)) return 0;
  const seconds = Math.floor(Math.abs(ms) / 1000);
  return TIME_KEY.length + (ms < 0 ? 1 : 0) + decimalDigits(seconds) + 4 + 1;
}

/** Writes `"time":<hecTime(ms)>,` at `at` (nothing when NaN); returns the offset after it. */
function writeTime(out: Buffer, at: number, ms: number): number {
  if (!Number.isFinite(ms)) return at;
  at += TIME_KEY.copy(out, at);
  if (ms < 0) out[at++] = 0x2d;
  const abs = Math.abs(ms);
  at = writeDecimal(out, at, Math.floor(abs / 1000));
  out[at++] = 0x2e;
  const millis = abs % 1000;
  out[at++] = 0x30 + Math.floor(millis / 100);
  out[at++] = 0x30 + (Math.floor(millis / 10) % 10);
  out[at++] = 0x30 + (millis % 10);
  out[at++] = 0x2c;
  return at;
}

const CLOSE = Buffer.from('}\n');

/** A HEC status body: `{"text":"...","code":N}`, plus `ackId` or `invalid-event-number`. */
export interface HecReply {
  text: string;
  code: number;
  ackId?: number;
  invalidEventNumber?: number;
}

export function parseHecReply(body: string): HecReply | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const o = parsed as Record<string, unknown>;
  if (typeof o.code !== 'number') return null;
  const reply: HecReply = { text: typeof o.text === 'string' ? o.text : '', code: o.code };
  if (typeof o.ackId === 'number') reply.ackId = o.ackId;
  const n = o['invalid-event-number'];
  if (typeof n === 'number') reply.invalidEventNumber = n;
  return reply;
}

/** `{"acks":{"3":true,"4":false}}` -> id -> indexed; null when the body has another shape. */
export function parseAckReply(body: string): Map<number, boolean> | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null;
  }
  const acks = (parsed as { acks?: unknown } | null)?.acks;
  if (typeof acks !== 'object' || acks === null || Array.isArray(acks)) return null;
  const out = new Map<number, boolean>();
  for (const [id, value] of Object.entries(acks)) {
    if (!/^\d+$/.test(id) || typeof value !== 'boolean') return null;
    out.set(Number(id), value);
  }
  return out;
}

export type HecClass =
  | { kind: 'ok'; ackId: number | null }
  | { kind: 'retry'; reason: string; message: string }
  | { kind: 'split'; message: string }
  | { kind: 'permanent'; message: string; invalidEventNumber?: number };

/**
 * What to do about a HEC answer to an event (or ack) request. The codes and their HTTP statuses are
 * Splunk's documented ones; a code HEC may add later is judged by its HTTP status.
 */
export function classifyHecResponse(status: number, body: string): HecClass {
  const reply = parseHecReply(body);
  const said = reply
    ? `HEC answered ${status} "${reply.text}" (code ${reply.code})`
    : `HEC answered ${status} ${describeBody(body)}`;
  if (status === 413) {
    return { kind: 'split', message: `${said}: the request is larger than HEC's max_content_length` };
  }
  if (reply === null) {
    if (status >= 200 && status < 300) {
      return { kind: 'retry', reason: 'bad_response', message: `${said}, not a HEC status; will resend` };
    }
    return byStatus(status, said, 'is this endpoint a Splunk HEC (https://host:8088)?');
  }
  const fix = FIXES[reply.code];
  switch (reply.code) {
    case 0:
    case 17:
      if (status >= 200 && status < 300) return { kind: 'ok', ackId: reply.ackId ?? null };
      return byStatus(status, said, '');
    case 8: // internal server error
    case 9: // server is busy
    case 18: // unhealthy: queues are full
    case 19: // unhealthy: ack service unavailable
    case 20: // both
    case 23: // server is shutting down
    case 26: // queue at capacity
    case 27: // performance limit reached
      return { kind: 'retry', reason: `hec_code_${reply.code}`, message: said };
    default: {
      const permanent: HecClass = {
        kind: 'permanent',
        message: fix ? `${said}: ${fix}` : said,
      };
      if (reply.invalidEventNumber !== undefined) permanent.invalidEventNumber = reply.invalidEventNumber;
      if (fix !== undefined || (status >= 400 && status < 500 && status !== 408 && status !== 429)) {
        return permanent;
      }
      return byStatus(status, said, '');
    }
  }
}

/** What the operator can do about each permanent HEC code. */
const FIXES: Record<number, string> = {
  1: 'enable the HEC token in Splunk (Settings > Data inputs > HTTP Event Collector) or set another token',
  2: 'set the sink token to the HEC token value',
  3: 'the Authorization header was refused; check that the token is a HEC token (not a Splunk session or REST token)',
  4: 'Splunk does not know this token; check the sink token against Settings > Data inputs > HTTP Event Collector',
  5: 'an empty request reached HEC (a bug in oktail; please report it)',
  6: 'HEC could not read an event envelope; the event is named below',
  7: "the index is not in the HEC token's allowed indexes: add it to the token, or change the sink's index",
  10: 'the HEC token has indexer acknowledgement enabled, which needs a channel: set acknowledgements: true',
  11: "HEC refused the request channel (oktail sends a random UUID); check a proxy is not rewriting 'X-Splunk-Request-Channel'",
  12: 'HEC found an envelope without an event (a bug in oktail; please report it)',
  13: 'HEC found an envelope with a blank event (a bug in oktail; please report it)',
  14: 'enable indexer acknowledgement on the HEC token, or set acknowledgements: false',
  15: 'HEC could not handle the indexed fields',
  16: 'query-string authorization is not enabled on the token (oktail sends the token in the Authorization header; check a proxy)',
  28: 'HEC behind a load balancer with several indexers needs sticky sessions for indexer acknowledgement: enable them, or set acknowledgements: false',
};

function byStatus(status: number, said: string, fix: string): HecClass {
  if (status === 408 || status === 429 || status >= 500) {
    return { kind: 'retry', reason: `status_${status}`, message: said };
  }
  return { kind: 'permanent', message: fix ? `${said}: ${fix}` : said };
}

function describeBody(body: string): string {
  const text = body.trim().replace(/\s+/g, ' ');
  if (text === '') return 'with an empty body';
  return `with a body that is not a HEC status: ${JSON.stringify(text.length > 120 ? text.slice(0, 120) + '...' : text)}`;
}
