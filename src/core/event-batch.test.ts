import { describe, expect, it } from 'vitest';
import { batchFromNdjson } from './event-batch.js';
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
