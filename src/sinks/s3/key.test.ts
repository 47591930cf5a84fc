import { describe, expect, it } from 'vitest';
import { itemsOf, type SinkItem } from '../shared/network-sink.js';
import { formatPrefix, objectKey, unknownPrefixFields } from './key.js';

const item = (over: Partial<SinkItem> = {}): SinkItem => ({
  bytes: Buffer.from('{"uuid":"u1"}'),
  uuid: 'dc9fd3c0-598c-11ef-8478-2b7584bf8d5a',
  published: '2026-03-04T05:06:07.089Z',
  eventType: 'user.session.start',
  severity: 'INFO',
  source: 'okta',
  domain: 'acme.okta.com',
  ...over,
});

describe('s3 object keys', () => {
  it('names an object after its first event, with the prefix dated by that event (UTC)', () => {
    expect(objectKey('okta/%Y/%m/%d/', itemsOf([item(), item({ uuid: 'other' })]), true)).toBe(
      'okta/2026/03/04/okta-20260304T050607.089Z-dc9fd3c0-598c-11ef-8478-2b7584bf8d5a.ndjson.gz',
    );
  });

  it('gives the same key to a replayed request holding more events, so it replaces the shorter object', () => {
    const first = [item(), item({ uuid: 'b' })];
    expect(objectKey('p/', itemsOf(first), false)).toBe(
      objectKey('p/', itemsOf([...first, item({ uuid: 'c' })]), false),
    );
  });

  it('never depends on the clock', () => {
    const a = objectKey('%Y/%H/', itemsOf([item()]), true);
    const b = objectKey('%Y/%H/', itemsOf([item()]), true);
    expect(a).toBe(b);
    expect(a.startsWith('2026/05/')).toBe(true);
  });

  it('formats every supported field and a literal %', () => {
    const d = new Date('2026-12-31T23:59:58Z');
    expect(formatPrefix('%Y-%m-%d %H:%M:%S day %j 100%%', d)).toBe('2026-12-31 23:59:58 day 365 100%');
  });

  it('reports unknown fields for config validation', () => {
    expect(unknownPrefixFields('okta/%Y/%q/%')).toEqual(['%q', '%']);
    expect(unknownPrefixFields('okta/%Y/%%/')).toEqual([]);
  });

  it('names an event without uuid or published by its content, stably', () => {
    const odd = item({ uuid: null, published: null, bytes: Buffer.from('{"x":1}') });
    const key = objectKey('x/%Y/', itemsOf([odd]), false);
    expect(key).toMatch(/^x\/1970\/okta-19700101T000000\.000Z-sha256-[0-9a-f]{32}\.ndjson$/);
    expect(objectKey('x/%Y/', itemsOf([odd]), false)).toBe(key);
  });
});
