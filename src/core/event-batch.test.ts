import { describe, expect, it } from 'vitest';
import { batchFromNdjson, eventFields, isoMillis, parseTimestamp } from './event-batch.js';
import { eventBytes } from './sink.js';

describe('batchFromNdjson', () => {
  it('keeps event boundaries and reads top-level fields without parsing nested ones', () => {
    const lines = [
      '{"target":[{"uuid":"nested","severity":"X"}],"uuid":"a\\"1","published":"2026-01-01T00:00:00.000Z","eventType":"user.session.start","severity":"INFO","_okta_event_type":"systemLog"}',
      '{"actor":{"eventType":"no"},"uuid":null,"severity":3,"published":"p2"}',
      '{}',
    ];
    const batch = batchFromNdjson('okta', 'acme.okta.com', Buffer.from(lines.join('\n') + '\n'));
    expect(batch.count).toBe(3);
    expect([0, 1, 2].map((i) => eventBytes(batch, i).toString())).toEqual(lines);
    expect(batch.uuids).toEqual(['a"1', null, null]);
    expect(batch.published).toEqual(['2026-01-01T00:00:00.000Z', 'p2', null]);
    expect(batch.eventTypes).toEqual(['user.session.start', null, null]);
    expect(batch.severities).toEqual(['INFO', null, null]);
    expect(batch.domain).toBe('acme.okta.com');
  });

  it('is empty for no bytes', () => {
    const batch = batchFromNdjson('okta', 'acme.okta.com', Buffer.alloc(0));
    expect(batch.count).toBe(0);
    expect(batch.uuids).toEqual([]);
  });
});

describe('eventFields', () => {
  const lines = [
    '{ "actor": {"uuid":"in-actor","published":"x"}, "eventType" : "a.b",\t"published":"2026-01-01T00:00:00.000Z", "severity":"WARN", "debugContext":{"s":"}\\"{["}, "uuid":"u\\u0031", "target":[{"uuid":"t"}]}',
    '{"uuid":"first","uuid":"second","published":12,"eventType":{"x":"y"},"severity":null}',
    'not json at all',
  ];
  const batch = () => batchFromNdjson('okta', 'acme.okta.com', Buffer.from(lines.join('\n') + '\n'));

  it('reads each field on demand, resuming where the last read stopped, in any order', () => {
    const fields = eventFields(batch());
    expect(fields.published(0)).toBe('2026-01-01T00:00:00.000Z');
    expect(fields.eventType(0)).toBe('a.b');
    expect(fields.uuid(0)).toBe('u1');
    expect(fields.severity(0)).toBe('WARN');
    const reversed = eventFields(batch());
    expect([reversed.uuid(0), reversed.severity(0), reversed.eventType(0), reversed.published(0)]).toEqual([
      'u1',
      'WARN',
      'a.b',
      '2026-01-01T00:00:00.000Z',
    ]);
  });

  it('takes a repeated key once, values that are not strings as absent, and survives bytes that are not JSON', () => {
    const fields = eventFields(batch());
    expect([fields.uuid(1), fields.published(1), fields.eventType(1), fields.severity(1)]).toEqual([
      'first',
      null,
      null,
      null,
    ]);
    expect([fields.uuid(2), fields.published(2), fields.eventType(2), fields.severity(2)]).toEqual([
      null,
      null,
      null,
      null,
    ]);
    expect(fields.uuid(3)).toBeNull();
  });

  it('agrees with the batch arrays, and serves batches made elsewhere from their arrays', () => {
    const b = batch();
    const fields = eventFields(b);
    expect([0, 1, 2].map((i) => fields.uuid(i))).toEqual(b.uuids);
    expect([0, 1, 2].map((i) => fields.published(i))).toEqual(b.published);
    const foreign = { ...b, uuids: ['x', 'y', 'z'] };
    expect(eventFields(foreign).uuid(1)).toBe('y');
  });
});

describe('publishedMs', () => {
  const iso = (s: string) => Buffer.from(s, 'latin1');

  it('equals Date.parse for Okta timestamps across leap days, month ends and centuries', () => {
    const seeds = [
      '2024-02-29T23:59:59.999Z',
      '2100-03-01T00:00:00.000Z',
      '2000-02-29T12:00:00.000Z',
      '1970-01-01T00:00:00.000Z',
      '0100-01-01T00:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
    ];
    let x = 12345;
    const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
    for (let k = 0; k < 5000; k++) seeds.push(new Date(next() * 2000 + next()).toISOString());
    for (const s of seeds) {
      expect(isoMillis(iso(s), 0, 24), s).toBe(Date.parse(s));
      expect(parseTimestamp(s), s).toBe(Date.parse(s));
    }
  });

  it('leaves every other spelling and every out-of-range part to Date.parse', () => {
    const others = [
      '2023-02-29T00:00:00.000Z',
      '2026-04-31T00:00:00.000Z',
      '2026-13-01T00:00:00.000Z',
      '2026-00-10T00:00:00.000Z',
      '2026-11-00T00:00:00.000Z',
      '2026-11-29T24:00:00.000Z',
      '2026-11-29T23:60:00.000Z',
      '2026-11-29T23:59:60.000Z',
      '0050-11-29T23:59:59.000Z',
      '2026-11-29T2a:00:00.000Z',
      '2026-11-29 10:00:00.000Z',
      '2026-11-29T10:00:00.000+01:00',
      '2026-11-29T10:00:00Z',
      '2026-11-29T10:00:00.000z',
    ];
    for (const s of others) {
      const b = iso(s);
      expect(isoMillis(b, 0, b.length), s).toBeNull();
    }
    // Any single-byte change of a valid stamp: either refused, or the same as Date.parse.
    const base = '2028-02-29T13:45:59.123Z';
    for (let at = 0; at < base.length; at++) {
      for (const ch of '0123456789-:.TZ+ a') {
        const s = base.slice(0, at) + ch + base.slice(at + 1);
        const ms = isoMillis(iso(s), 0, 24);
        if (ms !== null) expect(ms, s).toBe(Date.parse(s));
      }
    }
  });

  it('reads each event of a batch, escaped, offset or absent, as Date.parse reads its published', () => {
    const lines = [
      '{"uuid":"a","published":"2026-11-29T10:00:00.123Z"}',
      '{"published":"2026-11-29T10:00:00.123+01:00","uuid":"b"}',
      '{"published":"\\u0032026-11-29T10:00:00.123Z"}',
      '{"published":"2026-02-30T10:00:00.123Z"}',
      '{"published":17}',
      '{"actor":{"published":"2026-11-29T10:00:00.123Z"}}',
      '{"published":"soon"}',
    ];
    const batch = batchFromNdjson('okta', 'acme.okta.com', Buffer.from(lines.join('\n') + '\n'));
    const fields = eventFields(batch);
    const expected = batch.published.map((p) => (p === null ? NaN : Date.parse(p)));
    expect(lines.map((_, i) => fields.publishedMs(i))).toEqual(expected);
    expect(expected[0]).toBe(Date.UTC(2026, 10, 29, 10, 0, 0, 123));
    expect(expected[2]).toBe(expected[0]);
    expect(fields.publishedMs(99)).toBeNaN();
  });
});
