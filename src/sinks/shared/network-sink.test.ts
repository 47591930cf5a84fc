import { describe, expect, it } from 'vitest';
import { batchFromNdjson } from '../../core/event-batch.js';
import type { EventBatch } from '../../core/sink.js';
import { silentLogger } from '../../telemetry/logger.js';
import { LogTelemetry, type TelemetryEvent } from '../../telemetry/telemetry.js';
import {
  createNetworkSink,
  type NetworkSinkSettings,
  type SendOutcome,
  type SinkDriver,
  type SinkItem,
  type SinkItems,
} from './network-sink.js';

function events(source: string, from: number, n: number): EventBatch {
  let text = '';
  for (let i = from; i < from + n; i++) {
    text += `{"uuid":"u${i}","published":"2026-01-01T00:00:00.000Z","eventType":"user.session.start","severity":"INFO","n":${i},"_okta_event_type":"systemLog"}\n`;
  }
  return batchFromNdjson(source, `${source}.okta.com`, Buffer.from(text));
}

/** Records telemetry so tests can count log-worthy happenings. */
class RecordingTelemetry extends LogTelemetry {
  readonly failures: TelemetryEvent<'sinkRequestFailed'>[] = [];
  readonly recoveries: TelemetryEvent<'sinkRecovered'>[] = [];
  maxInFlight = 0;
  constructor() {
    super(silentLogger());
  }
  override sinkRequestFailed(e: TelemetryEvent<'sinkRequestFailed'>): void {
    this.failures.push(e);
  }
  override sinkRecovered(e: TelemetryEvent<'sinkRecovered'>): void {
    this.recoveries.push(e);
  }
  override sinkInFlight(e: TelemetryEvent<'sinkInFlight'>): void {
    this.maxInFlight = Math.max(this.maxInFlight, e.requests);
  }
}

/** A scripted destination for unit tests: answers from a function, records accepted uuids. */
class ScriptedDriver implements SinkDriver {
  readonly requests: string[][] = [];
  readonly accepted: string[] = [];
  constructor(
    readonly answer: (
      items: readonly SinkItem[],
      n: number,
      signal: AbortSignal,
    ) => Promise<SendOutcome> = () => Promise.resolve({ kind: 'ok' }),
  ) {}
  async send(view: SinkItems, signal: AbortSignal): Promise<SendOutcome> {
    const items = Array.from({ length: view.length }, (_, i) => view.item(i));
    const uuids = items.map((i) => i.uuid ?? '?');
    this.requests.push(uuids);
    const outcome = await this.answer(items, this.requests.length, signal);
    if (outcome.kind === 'ok') this.accepted.push(...uuids);
    if (outcome.kind === 'partial') {
      const failed = new Set(outcome.failed.map((f) => f.index));
      this.accepted.push(...uuids.filter((_, i) => !failed.has(i)));
    }
    return outcome;
  }
}

function settings(
  overrides: Partial<NetworkSinkSettings['batch']> = {},
  concurrency = 1,
): NetworkSinkSettings {
  return {
    batch: { maxEvents: 100, maxBytes: 1_000_000, timeoutMs: 0, ...overrides },
    request: { timeoutMs: 5000, concurrency },
    retry: { initialBackoffMs: 1, maxBackoffMs: 5 },
  };
}

function sink(driver: SinkDriver, s: NetworkSinkSettings, telemetry = new RecordingTelemetry()) {
  return {
    telemetry,
    sink: createNetworkSink({
      name: 'siem',
      inputs: ['a', 'b'],
      type: 'test',
      driver,
      settings: s,
      telemetry,
      log: silentLogger(),
      random: () => 0.5,
    }),
  };
}

const live = () => new AbortController().signal;
const uuids = (from: number, n: number) => Array.from({ length: n }, (_, i) => `u${from + i}`);

describe('createNetworkSink', () => {
  it('splits a page into requests by max_events and max_bytes and acks once all are accepted', async () => {
    const driver = new ScriptedDriver();
    const { sink: s } = sink(driver, settings({ maxEvents: 4 }));
    expect(s.kind).toBe('acknowledged');
    expect(await s.write(events('a', 0, 10), live())).toEqual({ kind: 'ok' });
    expect(driver.requests.map((r) => r.length)).toEqual([4, 4, 2]);
    expect(driver.accepted).toEqual(uuids(0, 10));

    const bytes = new ScriptedDriver();
    const eventSize = events('a', 0, 1).data.length; // one event and its newline
    const { sink: t } = sink(bytes, settings({ maxBytes: eventSize * 3 }));
    expect(await t.write(events('a', 0, 7), live())).toEqual({ kind: 'ok' });
    expect(bytes.requests.map((r) => r.length)).toEqual([3, 3, 1]);
    await s.close();
    await t.close();
  });

  it('hands the driver each event with its fields, source and domain', async () => {
    let seen: SinkItem | undefined;
    const driver = new ScriptedDriver((items) => {
      seen = items[0];
      return Promise.resolve({ kind: 'ok' });
    });
    const { sink: s } = sink(driver, settings());
    await s.write(events('a', 7, 1), live());
    expect(seen).toMatchObject({
      uuid: 'u7',
      published: '2026-01-01T00:00:00.000Z',
      eventType: 'user.session.start',
      severity: 'INFO',
      source: 'a',
      domain: 'a.okta.com',
    });
    expect(JSON.parse(seen!.bytes.toString())).toMatchObject({ n: 7, _okta_event_type: 'systemLog' });
    await s.close();
  });

  it('sends a part-filled batch at once when every input waits for its answer', async () => {
    const driver = new ScriptedDriver();
    // A batch timeout far beyond the test's limit: only "every input waits" can flush.
    const { sink: s } = sink(driver, settings({ timeoutMs: 600_000 }));
    const first = s.write(events('a', 0, 2), live());
    await new Promise((resolve) => setImmediate(resolve));
    // Source b may still hand over a page: the request waits for it (or for the timeout).
    expect(driver.requests).toEqual([]);
    const second = s.write(events('b', 10, 3), live());
    expect(await Promise.all([first, second])).toEqual([{ kind: 'ok' }, { kind: 'ok' }]);
    expect(driver.requests).toEqual([[...uuids(0, 2), ...uuids(10, 3)]]);
    await s.close();
  });

  it('counts the sources routed to it now, not its configured inputs, for the early flush', async () => {
    const driver = new ScriptedDriver();
    const { sink: s } = sink(driver, settings({ timeoutMs: 600_000 }));
    const first = s.write(events('a', 0, 2), live());
    await new Promise((resolve) => setImmediate(resolve));
    expect(driver.requests).toEqual([]);
    // Source b was removed at run time: nothing more can come before a flush.
    s.routed?.(['a']);
    expect(await first).toEqual({ kind: 'ok' });
    expect(driver.requests).toEqual([uuids(0, 2)]);
    // A source added at run time is waited for like a configured one.
    s.routed?.(['a', 'c']);
    const second = s.write(events('a', 5, 1), live());
    await new Promise((resolve) => setImmediate(resolve));
    expect(driver.requests).toHaveLength(1);
    const third = s.write(events('c', 20, 1), live());
    expect(await Promise.all([second, third])).toEqual([{ kind: 'ok' }, { kind: 'ok' }]);
    expect(driver.requests[1]).toEqual([...uuids(5, 1), ...uuids(20, 1)]);
    await s.close();
  });

  it('combines small pages of several sources into one request within the batch timeout', async () => {
    const driver = new ScriptedDriver();
    const { sink: s } = sink(driver, settings({ timeoutMs: 200 }));
    const results = await Promise.all([
      s.write(events('a', 0, 2), live()),
      s.write(events('b', 10, 3), live()),
    ]);
    expect(results).toEqual([{ kind: 'ok' }, { kind: 'ok' }]);
    expect(driver.requests).toEqual([[...uuids(0, 2), ...uuids(10, 3)]]);
    await s.close();
  });

  it('retries transient failures, honours Retry-After, and logs one warning per failure streak', async () => {
    const waits: number[] = [];
    let last = 0;
    const driver = new ScriptedDriver((_items, n) => {
      const now = performance.now();
      if (n > 1) waits.push(now - last);
      last = now;
      if (n === 1)
        return Promise.resolve({
          kind: 'retry',
          reason: 'http_429',
          error: new Error('429'),
          retryAfterMs: 150,
        });
      if (n <= 4) return Promise.reject(new Error('ECONNREFUSED'));
      return Promise.resolve({ kind: 'ok' });
    });
    const { sink: s, telemetry } = sink(driver, settings());
    expect(await s.write(events('a', 0, 3), live())).toEqual({ kind: 'ok' });
    expect(driver.requests).toHaveLength(5);
    expect(waits[0]).toBeGreaterThanOrEqual(140);
    expect(telemetry.failures.map((f) => [f.kind, f.reason, f.firstOfStreak])).toEqual([
      ['retryable', 'http_429', true],
      ['retryable', 'network', false],
      ['retryable', 'network', false],
      ['retryable', 'network', false],
    ]);
    expect(telemetry.recoveries).toHaveLength(1);
    expect(telemetry.recoveries[0]?.attempts).toBe(4);
    expect(driver.accepted).toEqual(uuids(0, 3));
    await s.close();
  });

  it('retries only the items a partial answer reports as retryable', async () => {
    const driver = new ScriptedDriver((items, n) =>
      Promise.resolve(
        n === 1
          ? {
              kind: 'partial',
              failed: [{ index: 1, retryable: true, reason: 'es_rejected_execution_exception' }],
            }
          : { kind: 'ok' },
      ),
    );
    const { sink: s } = sink(driver, settings());
    expect(await s.write(events('a', 0, 3), live())).toEqual({ kind: 'ok' });
    expect(driver.requests).toEqual([uuids(0, 3), ['u1']]);
    expect([...driver.accepted].sort()).toEqual(uuids(0, 3));
    await s.close();
  });

  it('maps partial failures back to the right events of a request holding pages of two sources', async () => {
    const views: SinkItems[] = [];
    const driver = new ScriptedDriver((_items, n) =>
      Promise.resolve(
        n === 1
          ? {
              kind: 'partial',
              failed: [
                { index: 1, retryable: true, reason: 'busy' },
                { index: 2, retryable: true, reason: 'busy' },
                { index: 3, retryable: true, reason: 'busy' },
              ],
            }
          : { kind: 'ok' },
      ),
    );
    const recording: SinkDriver = {
      send: (items, signal) => {
        views.push(items);
        return driver.send(items, signal);
      },
    };
    const { sink: s } = sink(recording, settings({ timeoutMs: 600_000 }));
    const a = events('a', 0, 3);
    const b = events('b', 10, 3);
    const [ra, rb] = await Promise.all([s.write(a, live()), s.write(b, live())]);
    expect([ra, rb]).toEqual([{ kind: 'ok' }, { kind: 'ok' }]);
    expect(driver.requests).toEqual([
      [...uuids(0, 3), ...uuids(10, 3)],
      ['u1', 'u2', 'u10'],
    ]);
    // The first request is a view of both pages: their bytes back to back, each event's own source.
    const first = views[0]!;
    expect(first.ndjson().toString()).toBe(a.data.toString() + b.data.toString());
    expect([first.source(2), first.source(3), first.domain(3)]).toEqual(['a', 'b', 'b.okta.com']);
    expect(first.bytes(4).toString()).toBe(b.data.toString().split('\n')[1]);
    const copy = Buffer.alloc(first.byteLength(0));
    expect(first.copyBytes(0, copy, 0)).toBe(copy.length);
    expect(copy.toString()).toBe(a.data.toString().split('\n')[0]);
    expect(() => first.uuid(6)).toThrow(RangeError);
    // The retry is a run of each page; its NDJSON is assembled from them.
    expect(views[1]!.ndjson().toString().split('\n')).toEqual([
      a.data.toString().split('\n')[1],
      a.data.toString().split('\n')[2],
      b.data.toString().split('\n')[0],
      '',
    ]);
    await s.close();
  });

  it('hands a whole page over as its own bytes, without copying them', async () => {
    let body: Buffer | undefined;
    const driver = new ScriptedDriver();
    const page = events('a', 0, 5);
    const { sink: s } = sink(
      {
        send: (items, signal) => {
          body = items.ndjson();
          return driver.send(items, signal);
        },
      },
      settings({ maxEvents: 3 }),
    );
    expect(await s.write(page, live())).toEqual({ kind: 'ok' });
    expect(body!.buffer).toBe(page.data.buffer);
    expect(body!.toString()).toBe(page.data.toString().split('\n').slice(3).join('\n'));
    await s.close();
  });

  it('halts with a fatal result naming the sink and the destination error for a permanent failure', async () => {
    const driver = new ScriptedDriver(() =>
      Promise.resolve({
        kind: 'permanent',
        error: new Error('HTTP 401 Unauthorized: invalid token; check auth.token'),
      }),
    );
    const { sink: s, telemetry } = sink(driver, settings());
    const result = await s.write(events('a', 0, 2), live());
    expect(result.kind).toBe('fatal');
    const message = result.kind === 'fatal' ? result.error.message : '';
    expect(message).toContain('siem');
    expect(message).toContain('HTTP 401 Unauthorized: invalid token; check auth.token');
    expect(driver.requests).toHaveLength(1);
    expect(telemetry.failures.map((f) => f.kind)).toEqual(['permanent']);

    const partial = new ScriptedDriver(() =>
      Promise.resolve({
        kind: 'partial',
        failed: [{ index: 0, retryable: false, reason: 'mapper_parsing_exception' }],
      }),
    );
    const { sink: t } = sink(partial, settings());
    const r = await t.write(events('a', 0, 2), live());
    expect(r.kind === 'fatal' && r.error.message).toContain('mapper_parsing_exception');
    await s.close();
    await t.close();
  });

  it('halves a request the destination finds too large, down to single events', async () => {
    const driver = new ScriptedDriver((items) =>
      Promise.resolve(items.length > 2 ? { kind: 'split', error: new Error('HTTP 413') } : { kind: 'ok' }),
    );
    const { sink: s } = sink(driver, settings());
    expect(await s.write(events('a', 0, 7), live())).toEqual({ kind: 'ok' });
    expect(driver.accepted).toEqual(uuids(0, 7));
    expect(driver.requests.filter((r) => r.length <= 2).flat()).toEqual(uuids(0, 7));

    const never = new ScriptedDriver(() => Promise.resolve({ kind: 'split', error: new Error('HTTP 413') }));
    const { sink: t } = sink(never, settings());
    const r = await t.write(events('a', 0, 2), live());
    expect(r.kind === 'fatal' && r.error.message).toContain('larger than the destination accepts');
    await s.close();
    await t.close();
  });

  it('keeps at most request.concurrency requests in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const driver = new ScriptedDriver(async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      return { kind: 'ok' };
    });
    const { sink: s, telemetry } = sink(driver, settings({ maxEvents: 1 }, 3));
    const results = await Promise.all([
      s.write(events('a', 0, 10), live()),
      s.write(events('b', 10, 10), live()),
    ]);
    expect(results).toEqual([{ kind: 'ok' }, { kind: 'ok' }]);
    expect(most).toBe(3);
    expect(telemetry.maxInFlight).toBe(3);
    await s.close();
  });

  it('times out a request that hangs and retries it', async () => {
    const driver = new ScriptedDriver((_items, n, signal) =>
      n === 1
        ? new Promise((_resolve, reject) =>
            signal.addEventListener('abort', () => reject(new Error('aborted'))),
          )
        : Promise.resolve({ kind: 'ok' }),
    );
    const s = settings();
    s.request.timeoutMs = 100;
    const { sink: t, telemetry } = sink(driver, s);
    expect(await t.write(events('a', 0, 1), live())).toEqual({ kind: 'ok' });
    expect(telemetry.failures.map((f) => f.reason)).toEqual(['timeout']);
    await t.close();
  });

  it('on shutdown answers retry, abandons the request and closes without waiting for the destination', async () => {
    let signals = 0;
    const driver = new ScriptedDriver((_items, _n, signal) => {
      signals++;
      return new Promise((resolve) =>
        signal.addEventListener('abort', () =>
          resolve({ kind: 'retry', reason: 'network', error: new Error('aborted') }),
        ),
      );
    });
    const { sink: s } = sink(driver, settings());
    const shutdown = new AbortController();
    const pending = s.write(events('a', 0, 3), shutdown.signal);
    while (signals === 0) await new Promise((r) => setTimeout(r, 5));
    shutdown.abort(new Error('shutting down'));
    const result = await pending;
    expect(result.kind).toBe('retry');
    await s.close();
    expect(driver.accepted).toEqual([]);
    expect((await s.write(events('a', 0, 1), live())).kind).toBe('fatal');
  });
});
