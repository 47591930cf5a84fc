import type { SinkItem } from '../shared/network-sink.js';

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
  const pri = facility * 8 + syslogSeverity(item.severity);
  const header =
    `<${pri}>1 ${syslogTimestamp(item.published)} ${syslogHostname(item.domain)} oktail - ` +
    `${printableAscii(item.eventType, 32)} - `;
  const headerLength = Buffer.byteLength(header);
  const length = headerLength + item.bytes.length;
  const prefix = `${length} `;
  const out = Buffer.allocUnsafe(prefix.length + length);
  out.write(prefix, 0, 'latin1');
  out.write(header, prefix.length, 'latin1');
  item.bytes.copy(out, prefix.length + headerLength);
  return out;
}
