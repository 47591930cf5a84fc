import { describe, expect, it } from 'vitest';
import { ReadinessTracker } from './readiness.js';

describe('readiness of a replica sharing its sources', () => {
  const sources = [
    { name: 'a', staleAfterMs: 10_000 },
    { name: 'b', staleAfterMs: 10_000 },
  ];

  it('is ready as a standby that owns nothing, however long it waits', () => {
    let now = 0;
    const tracker = new ReadinessTracker(sources, () => now);
    tracker.own([]);
    now = 60_000;
    expect(tracker.check()).toEqual({ ready: true, sources: [] });
  });

  it('answers only for owned sources, each with a fresh grace period from when it was taken', () => {
    let now = 0;
    const tracker = new ReadinessTracker(sources, () => now);
    tracker.own([]);
    now = 60_000;
    tracker.own(['b']);
    now = 65_000;
    expect(tracker.check()).toMatchObject({ ready: true, sources: [{ source: 'b', state: 'starting' }] });
    now = 71_000;
    expect(tracker.check()).toMatchObject({ ready: false, sources: [{ source: 'b', state: 'stale' }] });
  });

  it('forgets a halt once the source is handed over and taken again', () => {
    const now = 0;
    const tracker = new ReadinessTracker(sources, () => now);
    tracker.own(['a']);
    tracker.halted('a', 'OKTA_AUTH', 'token revoked');
    expect(tracker.check().ready).toBe(false);
    tracker.own([]);
    expect(tracker.check().ready).toBe(true);
    tracker.own(['a']);
    expect(tracker.check()).toMatchObject({ ready: true, sources: [{ source: 'a', state: 'starting' }] });
  });

  it('keeps answering for every configured source without a cluster', () => {
    const tracker = new ReadinessTracker(sources, () => 0);
    expect(tracker.check().sources.map((s) => s.source)).toEqual(['a', 'b']);
  });
});
