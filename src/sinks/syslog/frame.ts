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
  const m = TIMESTAMP.exec(published);
  if (!m) return '-';
  const fraction = m[2] === undefined ? '' : m[2].slice(0, 7);
  return `${m[1]}${fraction}${m[3]}`;
}

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
 * The frames of every event of a request, back to back in one buffer (see `syslogFrame`). Headers are
 * printable ASCII by construction, so their byte length is their string length.
 */
export function syslogFrames(
  items: Pick<
    SinkItems,
    'length' | 'published' | 'eventType' | 'severity' | 'domain' | 'byteLength' | 'copyBytes'
  >,
  facility: number,
): Buffer {
  const prefixes: string[] = new Array<string>(items.length);
  let total = 0;
  let lastDomain: string | null = null;
  let hostname = '-';
  for (let i = 0; i < items.length; i++) {
    const domain = items.domain(i);
    if (domain !== lastDomain) {
      lastDomain = domain;
      hostname = syslogHostname(domain);
    }
    const pri = facility * 8 + syslogSeverity(items.severity(i));
    const header =
      `<${pri}>1 ${syslogTimestamp(items.published(i))} ${hostname} oktail - ` +
      `${printableAscii(items.eventType(i), 32)} - `;
    const length = header.length + items.byteLength(i);
    const prefix = `${length} ${header}`;
    prefixes[i] = prefix;
    total += prefix.length + items.byteLength(i);
  }
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < items.length; i++) {
    at += out.write(prefixes[i] as string, at, 'latin1');
    at += items.copyBytes(i, out, at);
  }
  return out;
}
