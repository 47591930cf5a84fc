import { decimalDigits, writeDecimal } from '../shared/decimal.js';
import { itemsOf, type SinkItem, type SinkItems } from '../shared/network-sink.js';

/** RFC 5424 facility names and codes (section 6.2.1), by the names syslog.conf uses. */
export const FACILITIES = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  ntp: 12,
  security: 13,
  console: 14,
  solaris_cron: 15,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;
export type Facility = keyof typeof FACILITIES;

/** Okta's LogEvent severity to RFC 5424 severity; an absent or unknown one is informational (6). */
export function syslogSeverity(oktaSeverity: string | null): number {
  switch (oktaSeverity) {
    case 'DEBUG':
      return 7;
    case 'WARN':
      return 4;
    case 'ERROR':
      return 3;
    default:
      return 6;
  }
}

// RFC 5424 TIMESTAMP: RFC 3339 with an upper-case T and Z and at most 6 fractional digits.
const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Okta's `published` as an RFC 5424 TIMESTAMP; NILVALUE when it is absent or not RFC 3339. */
export function syslogTimestamp(published: string | null): string {
  if (published === null) return '-';
  // Okta writes every `published` as 2026-11-01T10:20:30.123Z, already a TIMESTAMP: no regex, no copy.
  if (isOktaTimestamp(published)) return published;
  const m = TIMESTAMP.exec(published);
  if (!m) return '-';
  const fraction = m[2] === undefined ? '' : m[2].slice(0, 7);
  return `${m[1]}${fraction}${m[3]}`;
}

/** `YYYY-MM-DDTHH:MM:SS.mmmZ` exactly. */
function isOktaTimestamp(t: string): boolean {
  if (t.length !== 24) return false;
  for (let i = 0; i < 24; i++) {
    const c = t.charCodeAt(i);
    const want = OKTA_TIMESTAMP_SHAPE.charCodeAt(i);
    if (want === 0x39 ? c < 0x30 || c > 0x39 : c !== want) return false;
  }
  return true;
}

/** '9' stands for any digit. */
const OKTA_TIMESTAMP_SHAPE = '9999-99-99T99:99:99.999Z';

/** PRINTUSASCII (%d33-126) only, at most `max` characters; NILVALUE when nothing is left. */
export function printableAscii(text: string | null, max: number): string {
  if (text === null) return '-';
  let out = '';
  for (let i = 0; i < text.length && out.length < max; i++) {
    const c = text.charCodeAt(i);
    if (c >= 33 && c <= 126) out += text[i];
  }
  return out === '' ? '-' : out;
}

/** The org host without a port: HOSTNAME is a host name, and `:` would read as part of it. */
export function syslogHostname(domain: string): string {
  const bracketed = /^\[([^\]]+)\]/.exec(domain);
  const host = bracketed ? bracketed[1]! : domain.replace(/:\d+$/, '');
  return printableAscii(host, 255);
}

/**
 * One RFC 5424 message, framed by octet counting (RFC 6587 section 3.4.1, required by RFC 5425):
 * `MSG-LEN SP <PRI>1 TIMESTAMP HOSTNAME oktail - MSGID - MSG`. MSG is the tagged event's bytes as
 * Okta sent them. No BOM: receivers and JSON parsers downstream take MSG as plain UTF-8 JSON.
 */
export function syslogFrame(item: SinkItem, facility: number): Buffer {
  return syslogFrames(itemsOf([item]), facility);
}

/**
 * The frames of every event of a request, back to back in one buffer (see `syslogFrame`): `output` returns
 * the `size` bytes to write them into (a reused buffer), a fresh buffer when absent. Headers are printable
 * ASCII by construction, so their byte length is their string length.
 */
export function syslogFrames(
  items: Pick<
    SinkItems,
    'length' | 'published' | 'eventType' | 'severity' | 'domain' | 'byteLength' | 'copyBytes'
  >,
  facility: number,
  output?: (size: number) => Buffer,
): Buffer {
  // Written in place rather than as a header string per event: a batch is framed while earlier pages are
  // still being written, and strings made per event lived long enough to fill the old generation.
  const timestamps: string[] = new Array<string>(items.length);
  const msgids: string[] = new Array<string>(items.length);
  const pris = new Uint8Array(items.length);
  const hostnames: string[] = new Array<string>(items.length);
  const lengths = new Uint32Array(items.length);
  const msgidOf = new Map<string | null, string>();
  let total = 0;
  let lastDomain: string | null = null;
  let hostname = '-';
  for (let i = 0; i < items.length; i++) {
    const domain = items.domain(i);
    if (domain !== lastDomain) {
      lastDomain = domain;
      hostname = syslogHostname(domain);
    }
    const eventType = items.eventType(i);
    let msgid = msgidOf.get(eventType);
    if (msgid === undefined) {
      msgid = printableAscii(eventType, 32);
      msgidOf.set(eventType, msgid);
    }
    const pri = facility * 8 + syslogSeverity(items.severity(i));
    const timestamp = syslogTimestamp(items.published(i));
    timestamps[i] = timestamp;
    msgids[i] = msgid;
    hostnames[i] = hostname;
    pris[i] = pri;
    // `<PRI>1 TIMESTAMP HOSTNAME oktail - MSGID - ` then MSG: all printable ASCII but MSG.
    const length =
      HEADER_FIXED +
      decimalDigits(pri) +
      timestamp.length +
      hostname.length +
      msgid.length +
      items.byteLength(i);
    lengths[i] = length;
    total += decimalDigits(length) + 1 + length;
  }
  const out = output ? output(total) : Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < items.length; i++) {
    const pri = pris[i] as number;
    const timestamp = timestamps[i] as string;
    const host = hostnames[i] as string;
    const msgid = msgids[i] as string;
    at = writeDecimal(out, at, lengths[i] as number);
    out[at++] = 0x20;
    out[at++] = 0x3c; // <
    at = writeDecimal(out, at, pri);
    out[at++] = 0x3e; // >
    out[at++] = 0x31; // 1
    out[at++] = 0x20;
    at += out.write(timestamp, at, 'latin1');
    out[at++] = 0x20;
    at += out.write(host, at, 'latin1');
    at += APP_NAME.copy(out, at);
    at += out.write(msgid, at, 'latin1');
    at += NO_STRUCTURED_DATA.copy(out, at);
    at += items.copyBytes(i, out, at);
  }
  return out;
}

const APP_NAME = Buffer.from(' oktail - ');
const NO_STRUCTURED_DATA = Buffer.from(' - ');
/** The header's bytes besides PRI, TIMESTAMP, HOSTNAME and MSGID: `<`, `>1 `, ` `, APP_NAME, ` - `. */
const HEADER_FIXED = 1 + 3 + 1 + APP_NAME.length + NO_STRUCTURED_DATA.length;
