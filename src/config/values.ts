import { isIPv4, isIPv6 } from 'node:net';

/*
 * Value checks shared by the config schema and the components' schemas: host[:port] and ISO 8601
 * date-times.
 */

// ---------------------------------------------------------------------------------------------------
// host[:port]

export interface HostPort {
  /** Without the brackets of an IPv6 literal. */
  host: string;
  port: number | null;
}

const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function isHostName(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  const labels = host.split('.');
  if (!labels.every((label) => HOST_LABEL.test(label))) return false;
  // All-numeric names that are not IPv4 addresses (e.g. 300.1.1.1) are typos, not host names.
  return !labels.every((label) => /^[0-9]+$/.test(label)) || isIPv4(host);
}

/** Parses `host`, `host:port`, `1.2.3.4:port` or `[::1]:port`; null when it is none of these. */
export function parseHostPort(text: string): HostPort | null {
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::([^:]*))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
    if (!isIPv6(host)) return null;
  } else {
    const parts = text.split(':');
    // More than one colon without brackets is an IPv6 literal whose port cannot be told apart.
    if (parts.length > 2) return null;
    host = parts[0] ?? '';
    portText = parts[1];
    if (!isHostName(host)) return null;
  }
  if (portText === undefined) return { host, port: null };
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  return port <= 65_535 ? { host, port } : null;
}

/** Splits a validated `api.address` for `server.listen`. */
export function parseAddress(address: string): { host: string; port: number } {
  const parsed = parseHostPort(address);
  if (!parsed || parsed.port === null) throw new TypeError('not a host:port address');
  return { host: parsed.host, port: parsed.port };
}

export interface DomainProblem {
  message: string;
  /** The corrected domain, when it can be derived from the value (shown only for literal values). */
  fix?: string;
}

/**
 * Okta's API host is used to build every URL and as the only origin the token may be sent to, so the
 * value must be exactly `host[:port]`. Common mistakes get a specific fix rather than a generic error.
 */
export function checkDomain(value: string): DomainProblem | null {
  if (value === '') return { message: 'must not be empty' };
  if (/\s/.test(value)) {
    const trimmed = value.trim();
    const fix = !/\s/.test(trimmed) && checkDomain(trimmed) === null ? trimmed : undefined;
    return { message: 'must not contain whitespace', ...(fix === undefined ? {} : { fix }) };
  }
  let rest = value;
  const removals: string[] = [];
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(rest);
  if (scheme) {
    removals.push('the scheme');
    rest = rest.slice(scheme[0].length);
  }
  const pathStart = rest.search(/[/?#]/);
  if (pathStart >= 0) {
    removals.push('the path');
    rest = rest.slice(0, pathStart);
  }
  const reasons = removals.length > 0 ? [`remove ${removals.join(' and ')}`] : [];
  if (/-admin\./i.test(rest)) {
    reasons.push("use the org's API host, not the -admin. console host");
    rest = rest.replace(/-admin\./i, '.');
  }
  if (reasons.length > 0) {
    const fix = parseHostPort(rest) ? rest : undefined;
    return { message: reasons.join('; '), ...(fix === undefined ? {} : { fix }) };
  }
  if (!parseHostPort(value)) {
    return {
      message:
        'must be a host name or IP address with an optional port, e.g. company.okta.com or 127.0.0.1:8443',
    };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------
// start_from

const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/;

/** ISO 8601 date-time with seconds and a timezone; fractions optional. Rejects dates that do not exist. */
export function isIsoDateTime(value: string): boolean {
  const m = ISO_DATE_TIME.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const offsetHour = m[7] === undefined ? 0 : Number(m[7]);
  const offsetMinute = m[8] === undefined ? 0 : Number(m[8]);
  // Date.parse rolls 2025-02-30 over into March; check the calendar explicitly.
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return (
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    offsetHour <= 23 &&
    offsetMinute <= 59 &&
    !Number.isNaN(Date.parse(value))
  );
}
