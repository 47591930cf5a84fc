import { describe, expect, it } from 'vitest';
import { batchFromNdjson, eventFields } from './event-batch.js';
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
