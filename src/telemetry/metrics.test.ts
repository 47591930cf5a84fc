import { describe, expect, it } from 'vitest';
import { MetricsTelemetry } from './metrics.js';
import { ReadinessTracker } from './readiness.js';
import type { TelemetrySink } from './telemetry.js';

const noop: TelemetrySink = {
  sourceStarted() {},
  pageFetched() {},
  requestFailed() {},
  rateLimitObserved() {},
  rateLimitWait() {},
  eventsDropped() {},
  batchDelivered() {},
  sinkRetry() {},
  checkpointCommitted() {},
  sinkRequestSent() {},
  sinkRequestFailed() {},
  sinkRecovered() {},
  sinkInFlight() {},
  cycleFinished() {},
  scriptError() {},
  sourceHalted() {},
};

/** `name{labels} value` lines of an exposition, as a map. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

function setup(now = { t: Date.parse('2026-01-15T10:00:00Z') }) {
  const seen: string[] = [];
  const next = new Proxy(noop, {
    get: (target, prop: keyof TelemetrySink) => (e: unknown) => {
      seen.push(prop);
      (target[prop] as (e: unknown) => void)(e);
    },
  });
  const metrics = new MetricsTelemetry({
    next,
    sources: [{ name: 'okta', staleAfterMs: 60_000 }],
    sinks: [{ name: 'file', type: 'file', inputs: ['okta'] }],
    version: '9.9.9',
    now: () => now.t,
  });
  return { metrics, seen, now };
}

describe('MetricsTelemetry', () => {
  it('starts every per-source and per-sink counter at 0', async () => {
    const { metrics } = setup();
    const m = samples((await metrics.scrape()).body);
    expect(m.get('oktail_source_events_received_total{source="okta"}')).toBe(0);
    expect(m.get('oktail_source_events_dropped_total{source="okta"}')).toBe(0);
    expect(m.get('oktail_sink_events_written_total{sink="file",source="okta"}')).toBe(0);
    expect(m.get('oktail_source_halted{source="okta"}')).toBe(0);
    expect(m.get('oktail_build_info{version="9.9.9",nodejs="' + process.version + '"}')).toBe(1);
  });

  it('counts requests by status, 429s, retries, events and bytes', async () => {
    const { metrics } = setup();
    metrics.pageFetched({ source: 'okta', events: 1000, bytes: 500_000, ms: 250, status: 200 });
    metrics.pageFetched({ source: 'okta', events: 20, bytes: 10_000, ms: 50, status: 200 });
    const failure = { source: 'okta', code: 'OKTA_RATE_LIMITED', error: 'x', attempt: 1 };
    metrics.requestFailed({ ...failure, status: 429, retryInMs: 100 });
    metrics.requestFailed({ ...failure, status: null, code: 'OKTA_FETCH_FAILED', retryInMs: 100 });
    metrics.requestFailed({ ...failure, status: 401, code: 'OKTA_AUTH', retryInMs: null });
    metrics.batchDelivered({
      source: 'okta',
      events: 1020,
      bytes: 520_000,
      sinks: ['file'],
      newestPublished: null,
    });
    const m = samples((await metrics.scrape()).body);
    expect(m.get('oktail_source_requests_total{source="okta",status="200"}')).toBe(2);
    expect(m.get('oktail_source_requests_total{source="okta",status="429"}')).toBe(1);
    expect(m.get('oktail_source_requests_total{source="okta",status="none"}')).toBe(1);
    expect(m.get('oktail_source_requests_total{source="okta",status="401"}')).toBe(1);
    expect(m.get('oktail_source_rate_limited_total{source="okta"}')).toBe(1);
    expect(m.get('oktail_source_retries_total{source="okta",reason="OKTA_RATE_LIMITED"}')).toBe(1);
    expect(m.get('oktail_source_retries_total{source="okta",reason="OKTA_FETCH_FAILED"}')).toBe(1);
    // The 401 halts the source: it is counted as a request, not as a retry.
    expect(m.has('oktail_source_retries_total{source="okta",reason="OKTA_AUTH"}')).toBe(false);
    expect(m.get('oktail_source_events_received_total{source="okta"}')).toBe(1020);
    expect(m.get('oktail_source_received_bytes_total{source="okta"}')).toBe(510_000);
    expect(m.get('oktail_sink_events_written_total{sink="file",source="okta"}')).toBe(1020);
    expect(m.get('oktail_sink_written_bytes_total{sink="file",source="okta"}')).toBe(520_000);
    expect(m.get('oktail_source_request_duration_seconds_count{source="okta"}')).toBe(2);
  });

  it('computes lag at scrape time from the newest delivered event', async () => {
    const { metrics, now } = setup();
    const deliver = (published: string) =>
      metrics.batchDelivered({
        source: 'okta',
        events: 1,
        bytes: 1,
        sinks: ['file'],
        newestPublished: published,
      });
    deliver('2026-01-15T09:59:00Z');
    // An older event arriving late does not move the position back.
    deliver('2026-01-15T09:58:00Z');
    let m = samples((await metrics.scrape()).body);
    expect(m.get('oktail_source_lag_seconds{source="okta"}')).toBe(60);
    expect(m.get('oktail_source_newest_event_timestamp_seconds{source="okta"}')).toBe(
      Date.parse('2026-01-15T09:59:00Z') / 1000,
    );
    now.t += 30_000;
    m = samples((await metrics.scrape()).body);
    expect(m.get('oktail_source_lag_seconds{source="okta"}')).toBe(90);
  });

  it('tells script filtering apart from loss', async () => {
    const { metrics } = setup();
    metrics.eventsDropped({ source: 'okta', events: 7, reason: 'script' });
    const m = samples((await metrics.scrape()).body);
    expect(m.get('oktail_source_events_filtered_total{source="okta"}')).toBe(7);
    expect(m.get('oktail_source_events_dropped_total{source="okta"}')).toBe(0);
  });

  it('records rate limits, commits, cycles, script errors and halts', async () => {
    const { metrics, now } = setup();
    metrics.rateLimitObserved({ source: 'okta', limit: 120, remaining: 42, resetInMs: 30_000 });
    metrics.rateLimitWait({ source: 'okta', waitMs: 1500, reason: 'budget' });
    metrics.checkpointCommitted({ source: 'okta', ms: 3 });
    metrics.cycleFinished({ source: 'okta', pages: 1, events: 1, ms: 10, newestPublished: null });
    metrics.scriptError({ source: 'okta', error: 'boom' });
    metrics.sinkRetry({ sink: 'file', source: 'okta', error: 'disk', retryInMs: 1000 });
    metrics.sourceHalted({ source: 'okta', code: 'OKTA_AUTH', error: 'denied' });
    const m = samples((await metrics.scrape()).body);
    expect(m.get('oktail_source_rate_limit_limit{source="okta"}')).toBe(120);
    expect(m.get('oktail_source_rate_limit_remaining{source="okta"}')).toBe(42);
    expect(m.get('oktail_source_rate_limit_reset_timestamp_seconds{source="okta"}')).toBe(now.t / 1000 + 30);
    expect(m.get('oktail_source_rate_limit_wait_seconds_total{source="okta"}')).toBe(1.5);
    expect(m.get('oktail_checkpoint_commits_total{source="okta"}')).toBe(1);
    expect(m.get('oktail_checkpoint_commit_duration_seconds_sum{source="okta"}')).toBe(0.003);
    expect(m.get('oktail_source_cycles_total{source="okta"}')).toBe(1);
    expect(m.get('oktail_source_last_cycle_success_timestamp_seconds{source="okta"}')).toBe(now.t / 1000);
    expect(m.get('oktail_source_script_errors_total{source="okta"}')).toBe(1);
    expect(m.get('oktail_sink_retries_total{sink="file",type="file",reason="write"}')).toBe(1);
    expect(m.get('oktail_source_halted{source="okta"}')).toBe(1);
  });

  it('forwards every happening to the next sink', () => {
    const { metrics, seen } = setup();
    metrics.sourceStarted({ source: 'okta', domain: 'x', script: 'y', resumed: false });
    metrics.cycleFinished({ source: 'okta', pages: 0, events: 0, ms: 1, newestPublished: null });
    metrics.sourceHalted({ source: 'okta', code: 'X', error: 'y' });
    expect(seen).toEqual(['sourceStarted', 'cycleFinished', 'sourceHalted']);
  });

  it('names every metric by the Prometheus conventions', async () => {
    const { metrics } = setup();
    const names = (await metrics.registry.getMetricsAsJSON()).map((m) => ({ name: m.name, type: m.type }));
    for (const { name, type } of names) {
      expect(name).toMatch(/^oktail_[a-z_]+$/);
      if (String(type) === 'counter') expect(name).toMatch(/_total$/);
      else expect(name).not.toMatch(/_total$/);
      expect(name).not.toMatch(/_(ms|millis|milliseconds|secs)(_|$)/);
    }
  });
});

describe('ReadinessTracker', () => {
  it('counts a source that has not finished a cycle as ready during the grace period only', () => {
    const now = { t: 0 };
    const tracker = new ReadinessTracker([{ name: 'okta', staleAfterMs: 1000 }], () => now.t);
    expect(tracker.check()).toMatchObject({ ready: true, sources: [{ state: 'starting' }] });
    now.t = 1001;
    expect(tracker.check()).toMatchObject({ ready: false, sources: [{ state: 'stale' }] });
  });

  it('stays ready while cycles finish or pages commit, and goes stale without them', () => {
    const now = { t: 0 };
    const tracker = new ReadinessTracker([{ name: 'okta', staleAfterMs: 1000 }], () => now.t);
    now.t = 900;
    tracker.progressed('okta');
    now.t = 1800;
    expect(tracker.check().ready).toBe(true);
    now.t = 1901;
    const result = tracker.check();
    expect(result.ready).toBe(false);
    expect(result.sources[0]!.reason).toMatch(/for 1 s \(limit 1 s\)/);
  });

  it('is not ready once any source halted, and names it', () => {
    const tracker = new ReadinessTracker([
      { name: 'a', staleAfterMs: 1000 },
      { name: 'b', staleAfterMs: 1000 },
    ]);
    tracker.progressed('a');
    tracker.halted('b', 'OKTA_AUTH', 'the token was rejected');
    const result = tracker.check();
    expect(result.ready).toBe(false);
    expect(result.sources.find((s) => s.source === 'a')!.ready).toBe(true);
    expect(result.sources.find((s) => s.source === 'b')).toMatchObject({
      ready: false,
      state: 'halted',
      reason: 'halted: OKTA_AUTH: the token was rejected',
    });
  });

  it('follows sources started and stopped at run time (the console)', () => {
    const now = { t: 0 };
    const tracker = new ReadinessTracker([{ name: 'old', staleAfterMs: 1000 }], () => now.t);
    now.t = 5000;
    expect(tracker.check().ready).toBe(false);
    // Deleted in the console: it no longer holds /ready down.
    tracker.untrack('old');
    expect(tracker.check()).toEqual({ ready: true, sources: [] });
    // Added in the console: its grace period starts when it is added, not at process start.
    tracker.track({ name: 'new', staleAfterMs: 1000 });
    now.t = 5900;
    expect(tracker.check()).toMatchObject({ ready: true, sources: [{ source: 'new', state: 'starting' }] });
    now.t = 6001;
    expect(tracker.check()).toMatchObject({ ready: false, sources: [{ source: 'new', state: 'stale' }] });
  });
});
