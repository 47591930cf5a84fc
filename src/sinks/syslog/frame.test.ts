import { describe, expect, it } from 'vitest';
import { itemsOf, type SinkItem } from '../shared/network-sink.js';
import {
  FACILITIES,
  printableAscii,
  syslogFrame,
  syslogFrames,
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

  it('frames a request of many events back to back, each as its header string and bytes would read', () => {
    const severities = [null, 'DEBUG', 'INFO', 'WARN', 'ERROR'];
    const published = [
      '2026-11-01T10:20:30.123Z',
      '2026-11-01T10:20:30Z',
      '2026-11-01T10:20:30.1234567+02:00',
      null,
      'bad',
    ];
    const types = ['user.session.start', null, 'a'.repeat(40), 'x y\u00e9', 'policy.evaluate_sign_on'];
    const list = Array.from({ length: 120 }, (_, i) =>
      item({
        bytes: Buffer.from(`{"n":${i},"s":"${'é'.repeat(i % 7)}${'x'.repeat(i * 37)}"}`),
        severity: severities[i % 5]!,
        published: published[(i * 3) % 5]!,
        eventType: types[(i * 7) % 5]!,
        domain: i < 60 ? 'acme.okta.com' : 'acme.oktapreview.com:8443',
      }),
    );
    const expected = Buffer.concat(
      list.map((e) => {
        const header =
          `<${FACILITIES.local3 * 8 + syslogSeverity(e.severity)}>1 ${syslogTimestamp(e.published)} ` +
          `${syslogHostname(e.domain)} oktail - ${printableAscii(e.eventType, 32)} - `;
        return Buffer.concat([Buffer.from(`${header.length + e.bytes.length} ${header}`, 'latin1'), e.bytes]);
      }),
    );
    expect(syslogFrames(itemsOf(list), FACILITIES.local3).equals(expected)).toBe(true);
    const reused = Buffer.alloc(expected.length + 100, 0x2a);
    const into = syslogFrames(itemsOf(list), FACILITIES.local3, (size) => reused.subarray(0, size));
    expect(into.buffer).toBe(reused.buffer);
    expect(into.equals(expected)).toBe(true);
  });
});
