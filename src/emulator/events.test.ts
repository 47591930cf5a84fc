import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  generateEvents,
  recordFromEvent,
  toLogEvent,
  trickyKindAt,
  UNKNOWN_FIELD_JSON,
  type EventRecord,
} from './events.js';

const FIXTURES = '/work/shared/fixtures';

function textOf(r: EventRecord): string {
  return r.raw.toString('utf8');
}

describe('generateEvents', () => {
  it('produces compact LogEvents of realistic size with the documented top-level fields', () => {
    const records = generateEvents(300, { seed: 1 });
    const sizes = records.map((r) => r.raw.length);
    const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
    expect(mean).toBeGreaterThan(1500);
    expect(mean).toBeLessThan(2100);
    const event = toLogEvent(records[0]!);
    for (const field of [
      'actor',
      'client',
      'authenticationContext',
      'displayMessage',
      'eventType',
      'outcome',
      'published',
      'securityContext',
      'severity',
      'debugContext',
      'legacyEventType',
      'transaction',
      'uuid',
      'version',
      'request',
      'target',
    ]) {
      expect(event).toHaveProperty(field);
    }
    expect(textOf(records[0]!)).toBe(JSON.stringify(event));
    expect(new Set(records.map((r) => r.eventType)).size).toBeGreaterThan(5);
  });

  it('gives every event a unique v4 uuid and a millisecond ISO published that match its body', () => {
    const records = generateEvents(5000, { seed: 2 });
    expect(new Set(records.map((r) => r.uuid)).size).toBe(5000);
    for (const r of records.slice(0, 200)) {
      expect(r.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(r.published).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const event = toLogEvent(r);
      expect(event.uuid).toBe(r.uuid);
      expect(event.published).toBe(r.published);
      expect(event.eventType).toBe(r.eventType);
      expect(Date.parse(r.published)).toBe(r.publishedMs);
    }
  });

  it('is reproducible from a seed and a start time', () => {
    const a = generateEvents(50, { seed: 7, publishedStart: 1_700_000_000_000 });
    const b = generateEvents(50, { seed: 7, publishedStart: 1_700_000_000_000 });
    const c = generateEvents(50, { seed: 8, publishedStart: 1_700_000_000_000 });
    expect(a.map((r) => r.raw.toString('base64'))).toEqual(b.map((r) => r.raw.toString('base64')));
    expect(a[0]!.uuid).not.toBe(c[0]!.uuid);
  });

  it('spaces published times by stepMs from publishedStart', () => {
    const records = generateEvents(4, { publishedStart: Date.UTC(2025, 0, 15, 8, 30), stepMs: 250 });
    expect(records.map((r) => r.published)).toEqual([
      '2025-01-15T08:30:00.000Z',
      '2025-01-15T08:30:00.250Z',
      '2025-01-15T08:30:00.500Z',
      '2025-01-15T08:30:00.750Z',
    ]);
  });

  it('ends about a second in the past by default', () => {
    const records = generateEvents(100);
    const last = records.at(-1)!.publishedMs;
    expect(Date.now() - last).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - last).toBeLessThan(5000);
  });

  it('makes runs of events share one millisecond', () => {
    const records = generateEvents(9, { publishedStart: 0, sameMillisecondGroups: 3 });
    expect(records.map((r) => r.publishedMs)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
  });

  it('puts some events before their predecessors when asked for out-of-order times', () => {
    const records = generateEvents(1000, { seed: 3, outOfOrder: 0.1 });
    const backwards = records.filter((r, i) => i > 0 && r.publishedMs < records[i - 1]!.publishedMs);
    expect(backwards.length).toBeGreaterThan(50);
    expect(backwards.length).toBeLessThan(200);
    expect(
      generateEvents(1000, { seed: 3 }).every(
        (r, i, all) => i === 0 || r.publishedMs >= all[i - 1]!.publishedMs,
      ),
    ).toBe(true);
  });

  it('carries tricky content at predictable positions', () => {
    expect([1, 51, 101, 151, 201].map((i) => trickyKindAt(i))).toEqual([
      'unicode',
      'escapes',
      'line-separators',
      'unknown-field',
      'unicode',
    ]);
    expect(trickyKindAt(2)).toBeNull();
    expect(trickyKindAt(1, 0)).toBeNull();
    const records = generateEvents(8, { seed: 4, trickyEvery: 2 });
    const [unicode, escapes, separators, unknown] = [1, 3, 5, 7].map((i) => textOf(records[i]!));

    expect(unicode).toContain('"displayName":"Zoë 東京 ✓"');
    expect(unicode).toContain('🔐');
    expect(unicode).toContain('"preferredName":"caf\\u00e9 \\ud83d\\ude00"');
    expect(escapes).toContain('\\"Quoted\\" C:\\\\Program Files\\\\Okta\\\\"');
    expect(escapes).toContain('"requestUri":"\\/api\\/v1\\/authn');
    expect(separators).toContain('line\u2028separator\u2029paragraph');
    expect(separators).toContain('escaped\\u2028separator');
    expect(unknown).toContain(UNKNOWN_FIELD_JSON);
    expect(unknown).toContain('[1,2.50,null,true]');
    for (const text of [unicode, escapes, separators, unknown])
      expect(() => void JSON.parse(text!)).not.toThrow();
    // Re-serialising changes the bytes: exactly what a collector must not do.
    expect(JSON.stringify(JSON.parse(unknown!))).not.toBe(unknown);
  });

  it('can leave tricky content out', () => {
    const text = generateEvents(200, { seed: 5, trickyEvery: 0 }).map(textOf).join('\n');
    expect(text).not.toContain('newFieldFromOkta');
    expect(text).not.toContain('Zoë');
  });
});

describe('recordFromEvent', () => {
  it('keeps fixture text byte for byte, impossible dates included', () => {
    const text = readFileSync(`${FIXTURES}/okta-logevent-reference-example.json`, 'utf8');
    const record = recordFromEvent(text);
    expect(record.raw.toString('utf8')).toBe(text);
    expect(record.uuid).toBe('f790999f-fe87-467a-9880-6982a583986c');
    expect(record.published).toBe('2017-09-31T22:23:07.777Z');
    expect(record.eventType).toBe('user.session.start');
  });

  it('serialises objects compactly', () => {
    const event = JSON.parse(readFileSync(`${FIXTURES}/okta-logevent-docs-example.json`, 'utf8'));
    const record = recordFromEvent(event);
    expect(record.raw.toString('utf8')).toBe(JSON.stringify(event));
    expect(record.eventType).toBe('core.concurrency.org.limit.violation');
  });

  it('rejects events without uuid or published', () => {
    expect(() => recordFromEvent({ uuid: 'x' })).toThrow(/published/);
    expect(() => recordFromEvent('[1]')).toThrow(/object/);
  });
});
