import { describe, expect, it } from 'vitest';
import type { SinkItem } from '../shared/network-sink.js';
import {
  FACILITIES,
  printableAscii,
  syslogFrame,
  syslogHostname,
  syslogSeverity,
  syslogTimestamp,
} from './frame.js';

const item = (over: Partial<SinkItem> = {}): SinkItem => ({
  bytes: Buffer.from('{"uuid":"u1","_okta_event_type":"systemLog"}'),
  uuid: 'u1',
  published: '2026-11-01T10:20:30.123Z',
  eventType: 'user.session.start',
  severity: 'INFO',
  source: 'okta',
  domain: 'acme.okta.com',
  ...over,
});

describe('syslog framing', () => {
  it('frames an event as an octet-counted RFC 5424 message with the event bytes as MSG', () => {
    const frame = syslogFrame(item(), FACILITIES.authpriv).toString('utf8');
    const message =
      '<86>1 2026-11-01T10:20:30.123Z acme.okta.com oktail - user.session.start - ' +
      '{"uuid":"u1","_okta_event_type":"systemLog"}';
    expect(frame).toBe(`${Buffer.byteLength(message)} ${message}`);
  });

  it('counts octets, not characters, for non-ASCII events', () => {
    const bytes = Buffer.from('{"displayName":"Zoë 日本"}');
    const frame = syslogFrame(item({ bytes }), FACILITIES.local0);
    const space = frame.indexOf(0x20);
    const length = Number(frame.subarray(0, space).toString());
    expect(frame.length - space - 1).toBe(length);
    expect(frame.subarray(frame.length - bytes.length).equals(bytes)).toBe(true);
  });

  it('maps Okta severities and keeps unknown ones informational', () => {
    expect([null, 'DEBUG', 'INFO', 'WARN', 'ERROR', 'weird'].map(syslogSeverity)).toEqual([6, 7, 6, 4, 3, 6]);
    expect(syslogFrame(item({ severity: 'ERROR' }), FACILITIES.local7).toString()).toContain('<187>1 ');
  });

  it('cuts MSGID to 32 printable ASCII characters and uses NILVALUE for an absent one', () => {
    const long = 'a.very.long.event.type.name.that.goes.on';
    expect(printableAscii(long, 32)).toBe(long.slice(0, 32));
    expect(printableAscii('with space\u00e9\u0007x', 32)).toBe('withspacex');
    expect(printableAscii(null, 32)).toBe('-');
    expect(syslogFrame(item({ eventType: null }), 1).toString()).toContain(' oktail - - - {');
  });

  it('keeps an RFC 3339 published with at most 6 fraction digits and NILVALUE otherwise', () => {
    expect(syslogTimestamp('2026-11-01T10:20:30Z')).toBe('2026-11-01T10:20:30Z');
    expect(syslogTimestamp('2026-11-01T10:20:30.123456789+02:00')).toBe('2026-11-01T10:20:30.123456+02:00');
    expect(syslogTimestamp('yesterday')).toBe('-');
    expect(syslogTimestamp(null)).toBe('-');
  });

  it('uses the org host without its port as HOSTNAME', () => {
    expect(syslogHostname('acme.okta.com')).toBe('acme.okta.com');
    expect(syslogHostname('127.0.0.1:8443')).toBe('127.0.0.1');
    expect(syslogHostname('[::1]:8443')).toBe('::1');
  });
});
