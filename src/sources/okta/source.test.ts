import { describe, expect, it, vi } from 'vitest';
import { EventEdit, type CollectionLogic, type PageMeta } from '../../core/collection-logic.js';
import type { JsonObject } from '../../core/json.js';
import { silentLogger } from '../../telemetry/logger.js';
import { LogTelemetry, type TelemetryEvent } from '../../telemetry/telemetry.js';
import { OktaResponseError, type FetchedPage } from './client.js';
import { RateLimiter } from './rate-limiter.js';
import { OktaSource, type SourcePage } from './source.js';

const ORIGIN = 'https://acme.okta.com';

/** One request the fake org received; the test answers it (or it answers itself when aborted). */
interface Call {
  path: string;
  signal: AbortSignal;
  answer: (events: number[] | Error) => void;
  /** Set once the request has finished writing the body buffer and settled. */
  settled: boolean;
}

/**
 * An org whose every answer the test gives by hand. Like the real client, it reads every 200 body into
 * one of two reused buffers, so a page that still pointed into one after the next fetch into it would
 * show other bytes.
 */
class FakeClient {
  readonly origin = ORIGIN;
  readonly calls: Call[] = [];
  readonly #bodies = [Buffer.alloc(64 * 1024), Buffer.alloc(64 * 1024)] as const;

  resolve(urlOrPath: string): URL {
    return new URL(urlOrPath, ORIGIN);
  }

  fetch(url: URL, signal: AbortSignal, buffer: 0 | 1 = 0): Promise<FetchedPage> {
    const body = this.#bodies[buffer];
    return new Promise<FetchedPage>((resolve, reject) => {
      const call: Call = {
        path: url.pathname,
        signal,
        settled: false,
        answer: (events) => {
          if (call.settled) return;
          if (events instanceof Error) {
            call.settled = true;
            reject(events);
            return;
          }
          const json = JSON.stringify(events.map((n) => ({ uuid: `e${n}`, published: `t${n}`, n })));
          const size = body.write(json);
          call.settled = true;
          resolve({
            url: url.href,
            status: 200,
            headers: {},
            body: body.subarray(0, size),
            receivedAtMs: Date.now(),
            ms: 1,
          });
        },
      };
      // An aborted request goes on writing for a moment, as a body stream does until it is torn down:
      // whoever aborts it must wait for it to settle.
      signal.addEventListener('abort', () => setTimeout(() => call.answer(signal.reason as Error), 20), {
        once: true,
      });
      this.calls.push(call);
    });
  }
}

/** Pages /p1 -> /p2 -> ... -> /pN; the last has no next link. State records the last event's number. */
function chain(last: number, extra: Partial<CollectionLogic> = {}): CollectionLogic {
  return {
    name: 'test logic',
    tags: {},
    initialState: async () => ({}),
    cycleRequest: async () => '/p1',
    afterPage: async (_state: JsonObject, page: PageMeta) => {
      const n = Number(page.url.slice(`${ORIGIN}/p`.length));
      return {
        state: { page: n, last_published: page.last?.published ?? null },
        next: n < last ? `/p${n + 1}` : null,
      };
    },
    close: async () => {},
    ...extra,
  };
}

class CountingTelemetry extends LogTelemetry {
  readonly fetched: TelemetryEvent<'pageFetched'>[] = [];
  constructor() {
    super(silentLogger());
  }
  override pageFetched(e: TelemetryEvent<'pageFetched'>): void {
    this.fetched.push(e);
  }
}

function setup(logic: CollectionLogic) {
  const client = new FakeClient();
  const telemetry = new CountingTelemetry();
  const source = new OktaSource({
    name: 'okta',
    client,
    limiter: new RateLimiter({ maxShare: 0.5, minRemaining: 2 }),
    logic,
    telemetry,
    retry: { initialBackoffMs: 1, maxBackoffMs: 2 },
    configPath: 'oktail.yaml',
  });
  return { client, telemetry, source };
}

/** Waits for the fake org to have received `count` requests (the source's fetch is a few awaits deep). */
async function requests(client: FakeClient, count: number): Promise<Call[]> {
  await vi.waitFor(() => expect(client.calls.length).toBe(count), { timeout: 10_000, interval: 1 });
  return client.calls;
}

function lines(page: SourcePage): number[] {
  return page.batch.data
    .toString()
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { n: number }).n);
}

describe('OktaSource read-ahead', () => {
  it('requests the next page before handing over the current one, and keeps the current one intact', async () => {
    const { client, telemetry, source } = setup(chain(3));
    const pages = source.cycle({}, new AbortController().signal);
    const first = pages.next();
    (await requests(client, 1))[0]!.answer([1, 2]);
    const p1 = (await first).value as SourcePage;
    // Page 1 is in the caller's hands and page 2 is already asked for.
    const calls = await requests(client, 2);
    expect(calls.map((c) => c.path)).toEqual(['/p1', '/p2']);
    // Page 2 arrives into the same body buffer while page 1 is still being delivered.
    calls[1]!.answer([3, 4, 5]);
    await vi.waitFor(() => expect(telemetry.fetched.length).toBe(2), { timeout: 10_000, interval: 1 });
    expect(lines(p1)).toEqual([1, 2]);
    expect(p1.state).toEqual({ page: 1, last_published: 't2' });

    const second = pages.next();
    const p2 = (await second).value as SourcePage;
    expect(lines(p2)).toEqual([3, 4, 5]);
    (await requests(client, 3))[2]!.answer([6]);
    const p3 = (await pages.next()).value as SourcePage;
    expect(lines(p3)).toEqual([6]);
    expect(p3.state).toEqual({ page: 3, last_published: 't6' });
    expect((await pages.next()).done).toBe(true);
    expect(client.calls.map((c) => c.path)).toEqual(['/p1', '/p2', '/p3']);
    expect(telemetry.fetched.map((e) => e.events)).toEqual([2, 3, 1]);
  });

  it('makes no request after the last page of a cycle', async () => {
    const { client, source } = setup(chain(1));
    const pages = source.cycle({}, new AbortController().signal);
    const first = pages.next();
    (await requests(client, 1))[0]!.answer([1]);
    const p1 = await first;
    expect(lines(p1.value as SourcePage)).toEqual([1]);
    // Nothing is fetched while the last page is delivered, nor after it.
    await new Promise((r) => setTimeout(r, 50));
    expect(client.calls.length).toBe(1);
    expect((await pages.next()).done).toBe(true);
    expect(client.calls.length).toBe(1);
  });

  it('keeps a read-ahead failure until the generator resumes, then throws it as a fetch would', async () => {
    const { client, source } = setup(chain(3));
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const pages = source.cycle({}, new AbortController().signal);
      const first = pages.next();
      (await requests(client, 1))[0]!.answer([1]);
      await first;
      const rejected = new OktaResponseError(
        'OKTA_BAD_REQUEST',
        'Bad request - check API parameters',
        false,
        400,
        { errorCode: 'E0000029' },
        {},
      );
      (await requests(client, 2))[1]!.answer(rejected);
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
      // The halt message names the state page 1 commits, like a fetch made after its delivery.
      const err = await pages.next().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(OktaResponseError);
      expect((err as OktaResponseError).code).toBe('OKTA_BAD_REQUEST');
      expect((err as Error).message).toContain('oktail state reset okta --start-from t1 -c oktail.yaml');
      expect(client.calls.length).toBe(2);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('retries a read-ahead while the current page is still being delivered', async () => {
    const { client, telemetry, source } = setup(chain(2));
    const pages = source.cycle({}, new AbortController().signal);
    const first = pages.next();
    (await requests(client, 1))[0]!.answer([1]);
    await first;
    const failure = new OktaResponseError('OKTA_FETCH_FAILED', 'Status=503', true, 503, {}, {});
    (await requests(client, 2))[1]!.answer(failure);
    const calls = await requests(client, 3);
    expect(calls[2]!.path).toBe('/p2');
    calls[2]!.answer([2]);
    await vi.waitFor(() => expect(telemetry.fetched.length).toBe(2), { timeout: 10_000, interval: 1 });
    expect(lines((await pages.next()).value as SourcePage)).toEqual([2]);
    expect((await pages.next()).done).toBe(true);
  });

  it('cancels the read-ahead and waits for it to settle when the caller stops early', async () => {
    const { client, source } = setup(chain(3));
    const pages = source.cycle({}, new AbortController().signal);
    const first = pages.next();
    (await requests(client, 1))[0]!.answer([1]);
    await first;
    const ahead = (await requests(client, 2))[1]!;
    expect(ahead.signal.aborted).toBe(false);
    await pages.return(undefined);
    expect(ahead.signal.aborted).toBe(true);
    expect(ahead.settled).toBe(true);
    expect(client.calls.length).toBe(2);
  });

  it('does the same when the caller throws into the generator', async () => {
    const { client, source } = setup(chain(3));
    const pages = source.cycle({}, new AbortController().signal);
    const first = pages.next();
    (await requests(client, 1))[0]!.answer([1]);
    await first;
    const ahead = (await requests(client, 2))[1]!;
    const sinkFailure = new Error('sink failed for good');
    await expect(pages.throw(sinkFailure)).rejects.toBe(sinkFailure);
    expect(ahead.signal.aborted).toBe(true);
    expect(ahead.settled).toBe(true);
  });

  it("aborts the read-ahead with the source's signal and throws its reason on resume", async () => {
    const { client, source } = setup(chain(3));
    const stop = new AbortController();
    const pages = source.cycle({}, stop.signal);
    const first = pages.next();
    (await requests(client, 1))[0]!.answer([1]);
    await first;
    const ahead = (await requests(client, 2))[1]!;
    const reason = new Error('shutting down');
    stop.abort(reason);
    expect(ahead.signal.aborted).toBe(true);
    await expect(pages.next()).rejects.toBe(reason);
    expect(ahead.settled).toBe(true);
    expect(client.calls.length).toBe(2);
  });

  it('reads ahead into the other body buffer while a page transform still reads the current page', async () => {
    const requestsDuringTransform: number[] = [];
    const org: { client?: FakeClient } = {};
    const logic = chain(3, {
      transformPage: async (events) => {
        // A script's thread reads the shared body in place, a while after the next page arrived.
        const firstEvent = () =>
          Buffer.from(events.body.subarray(events.offsets[0], events.offsets[1])).toString('utf8');
        const seen = firstEvent();
        const page = requestsDuringTransform.length + 1;
        if (page < 3) {
          // The next page is requested while this transform has not answered yet.
          const calls = await requests(org.client!, page + 1);
          calls[page]!.answer([11 + page, 20, 30]);
          await new Promise((r) => setTimeout(r, 20));
        }
        requestsDuringTransform.push(org.client!.calls.length);
        // Still the page this transform was given: the read-ahead went to the other buffer.
        expect(firstEvent()).toBe(seen);
        return {
          edits: new Uint8Array(events.count).fill(EventEdit.ADDED),
          text: Array.from({ length: events.count }, () => '"seen":true'),
        };
      },
    });
    const { client, source } = setup(logic);
    org.client = client;
    const pages = source.cycle({}, new AbortController().signal);
    const first = pages.next();
    (await requests(client, 1))[0]!.answer([1]);
    const p1 = (await first).value as SourcePage;
    expect(p1.batch.data.toString()).toBe('{"uuid":"e1","published":"t1","n":1,"seen":true}\n');
    expect(lines((await pages.next()).value as SourcePage)).toEqual([12, 20, 30]);
    expect(lines((await pages.next()).value as SourcePage)).toEqual([13, 20, 30]);
    expect((await pages.next()).done).toBe(true);
    // Each page's read-ahead was already under way while the page before it was transformed (none after the last).
    expect(requestsDuringTransform).toEqual([2, 3, 3]);
  });
});
