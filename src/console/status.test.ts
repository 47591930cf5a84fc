import { describe, expect, it } from 'vitest';
import { batchFromNdjson } from '../core/event-batch.js';
import type { PipelineSource } from '../pipeline/pipeline.js';
import type { SourcePage } from '../sources/okta/source.js';
import { ConsoleStatus } from './status.js';

function page(n: number, from: number): SourcePage {
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      uuid: `u${from + i}`,
      published: new Date(Date.UTC(2026, 0, 1, 0, 0, from + i)).toISOString(),
      eventType: 'user.session.start',
      actor: { alternateId: 'ann@example.com' },
      outcome: { result: 'SUCCESS' },
      displayMessage: `event ${from + i}`,
    }),
  );
  return {
    batch: batchFromNdjson('okta', 'x.okta.com', Buffer.from(lines.join('\n') + '\n')),
    state: { n: from + n },
    newestPublished: null,
  };
}

function source(pages: SourcePage[]): PipelineSource {
  return {
    name: 'okta',
    domain: 'x.okta.com',
    intervalMs: 1000,
    startFrom: null,
    logic: {} as PipelineSource['logic'],
    source: {
      async *cycle() {
        for (const p of pages) yield p;
      },
    },
  };
}

describe('ConsoleStatus', () => {
  it('records a page only once the pipeline asks for the next one (after its commit), last 50 newest first', async () => {
    const status = new ConsoleStatus();
    status.track('okta', 'x.okta.com');
    const tapped = status.tap(source([page(40, 0), page(30, 40)]));
    const cycle = tapped.source.cycle({}, new AbortController().signal);
    await cycle.next();
    expect(status.recentEvents('okta')).toEqual([]);
    await cycle.next();
    expect(status.recentEvents('okta')).toHaveLength(40);
    await cycle.next();
    const recent = status.recentEvents('okta');
    expect(recent).toHaveLength(50);
    expect(recent[0]).toMatchObject({
      eventType: 'user.session.start',
      actor: 'ann@example.com',
      outcome: 'SUCCESS',
      displayMessage: 'event 69',
    });
    expect(recent[49]?.displayMessage).toBe('event 20');
    expect(JSON.parse(recent[0]!.json)).toMatchObject({ uuid: 'u69' });
  });

  it('counts events per minute and per second, and tells retrying and halted with their messages', () => {
    let now = Date.UTC(2026, 0, 1, 12, 0, 30);
    const status = new ConsoleStatus(() => now);
    status.sourceStarted({ source: 'okta', domain: 'x.okta.com', script: 'okta.lua', resumed: false });
    const delivered = { source: 'okta', bytes: 1, sinks: ['a'], newestPublished: null };
    status.batchDelivered({ ...delivered, events: 60 });
    now += 60_000;
    status.batchDelivered({ ...delivered, events: 30 });
    const s = status.status('okta')!;
    expect(s.events).toBe(90);
    expect(s.perMinute.slice(-2)).toEqual([60, 30]);
    expect(s.perMinute).toHaveLength(60);
    expect(s.eventsPerSecond).toBe(0.5);
    status.requestFailed({
      source: 'okta',
      status: 503,
      code: 'X',
      error: 'Okta answered 503',
      attempt: 1,
      retryInMs: 10,
    });
    expect(status.status('okta')).toMatchObject({ state: 'retrying', message: 'Okta answered 503' });
    status.sourceHalted({
      source: 'okta',
      code: 'OKTA_AUTH',
      error: 'Authentication failed - check OKTA_API_TOKEN',
    });
    expect(status.status('okta')).toMatchObject({
      state: 'halted',
      message: 'OKTA_AUTH: Authentication failed - check OKTA_API_TOKEN',
    });
    expect(status.status('okta')!.errors).toHaveLength(2);
  });
});
