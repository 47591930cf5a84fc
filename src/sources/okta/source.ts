import {
  EventEdit,
  type CollectionLogic,
  type EventRef,
  type PageMeta,
} from '../../core/collection-logic.js';
import { OktailError, errorMessage, isOktailError } from '../../core/errors.js';
import type { JsonObject, JsonValue } from '../../core/json.js';
import { batchFromNdjson, type KnownFields } from '../../core/event-batch.js';
import type { EventBatch } from '../../core/sink.js';
import type { TelemetrySink } from '../../telemetry/telemetry.js';
import { OktaResponseError, type FetchedPage, type OktaHttpClient } from './client.js';
import { parseLinks } from './link-header.js';
import {
  eventRef,
  parseEvent,
  renderNdjson,
  renderObjects,
  scanPage,
  SpanFlag,
  type EventSpans,
} from './page-body.js';
import { readRateLimit, type RateLimitInfo } from './rate-limit-headers.js';
import { sleep } from '../../core/async.js';
import type { RateLimiter } from './rate-limiter.js';
import { withRecoveryCommand } from './recovery.js';

export interface RetrySettings {
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export interface OktaSourceOptions {
  name: string;
  client: Pick<OktaHttpClient, 'origin' | 'resolve' | 'fetch'>;
  limiter: RateLimiter;
  logic: CollectionLogic;
  telemetry: TelemetrySink;
  retry: RetrySettings;
  random?: () => number;
  /** The config file as the user named it, for the recovery command in a halt message. */
  configPath?: string;
}

/** One page ready for delivery, with the state to commit once every sink has it. */
export interface SourcePage {
  batch: EventBatch;
  state: JsonObject;
  /** `published` of the page's last event, for lag. */
  newestPublished: string | null;
}

/**
 * Fetches an org's System Log one cycle at a time. It decides nothing Okta-specific itself (the
 * collection logic does) and commits nothing (the pipeline does after every sink acknowledged): it
 * turns HTTP answers into pages or into errors that say "retry" or "halt".
 */
export class OktaSource {
  readonly name: string;
  readonly #o: OktaSourceOptions;
  readonly #random: () => number;
  readonly #tags: Record<string, JsonValue>;
  readonly #domain: string;
  /** NDJSON is rendered into this one buffer, for the same reason the client reuses its body buffer. */
  #output: Buffer = Buffer.alloc(0);
  readonly #outputOf = (size: number): Buffer => {
    if (size > this.#output.length) {
      this.#output = Buffer.allocUnsafeSlow(Math.max(size, Math.ceil(this.#output.length * 1.5)));
    }
    return this.#output.subarray(0, size);
  };

  constructor(options: OktaSourceOptions) {
    this.name = options.name;
    this.#o = options;
    this.#random = options.random ?? Math.random;
    this.#tags = { ...options.logic.tags };
    this.#domain = new URL(options.client.origin).host;
  }

  /**
   * Yields the pages of one cycle, starting from `state` (the last committed state). The generator
   * resumes only after the caller delivered the previous page, so backpressure is simply awaiting. A
   * page's batch is a view on the buffer the next page is rendered into: every sink must be done with its
   * bytes before the generator is resumed.
   *
   * The next page is read ahead while the caller delivers the current one, so a page costs the longer of
   * its fetch and its delivery instead of both. Only the request the collection logic asked for is
   * made (never one after a cycle's last page), and it reaches nothing the caller sees until the
   * generator resumes: its failure is thrown then, as a fetch made at that moment would throw it.
   */
  async *cycle(state: JsonObject, signal: AbortSignal): AsyncGenerator<SourcePage> {
    const { client, logic } = this.#o;
    // A script reads the page for a while (in its own thread): the next page is then read ahead into the
    // client's second body buffer, at once, so the fetch overlaps the script as well as the delivery.
    // Without a script, rendering is short and one buffer (less memory) does.
    const scripted = logic.transformPage !== undefined || logic.transform !== undefined;
    let buffer: 0 | 1 = 0;
    let ahead: ReadAhead | null = null;
    try {
      const first = client.resolve(await logic.cycleRequest(state));
      let fetched = await this.#fetchPage(first, signal, buffer).catch((err: unknown) => {
        throw withRecoveryCommand(err, this.name, state, this.#o.configPath);
      });
      for (;;) {
        const { page, spans } = fetched;
        const meta = pageMeta(page, spans);
        const decision = await logic.afterPage(state, meta);
        // Checked before delivery: a next link to another origin halts the source at a position a restart
        // reaches again, instead of committing a state that points elsewhere.
        const next: URL | null = decision.next === null ? null : client.resolve(decision.next);
        // The page's bytes live in a client body buffer that a read-ahead into the same buffer overwrites:
        // with one buffer, rendering is finished with them before the read-ahead starts.
        const nextBuffer: 0 | 1 = scripted ? ((1 - buffer) as 0 | 1) : 0;
        if (next !== null && scripted) ahead = this.#readAhead(next, signal, nextBuffer);
        const batch = await this.#render(page.body, spans);
        const newestPublished = meta.last?.published ?? null;
        if (next !== null && !scripted) ahead = this.#readAhead(next, signal, nextBuffer);
        buffer = nextBuffer;
        yield { batch, state: decision.state, newestPublished };
        state = decision.state;
        if (ahead === null) return;
        const result = await ahead.result;
        ahead = null;
        if (!result.ok) throw withRecoveryCommand(result.error, this.name, state, this.#o.configPath);
        fetched = result.page;
      }
    } finally {
      // The caller stopped early (shutdown, a failed sink, a lost lease): the read-ahead is cancelled and
      // settled before the cycle ends, so the next cycle's fetch never shares the body buffer with it.
      if (ahead !== null) {
        ahead.abort();
        await ahead.result;
      }
    }
  }

  /** Starts fetching `url` now; its outcome, success or failure, waits in `result` without surfacing. */
  #readAhead(url: URL, signal: AbortSignal, buffer: 0 | 1): ReadAhead {
    const controller = new AbortController();
    const stop = (): void => controller.abort(signal.reason);
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
    const result = this.#fetchPage(url, controller.signal, buffer).then(
      (page): ReadAheadResult => ({ ok: true, page }),
      (error: unknown): ReadAheadResult => ({ ok: false, error }),
    );
    void result.finally(() => signal.removeEventListener('abort', stop));
    return {
      result,
      abort: () =>
        controller.abort(new OktailError('INTERNAL', 'The cycle ended before this page was needed')),
    };
  }

  async #render(body: Buffer, spans: EventSpans): Promise<EventBatch> {
    const { logic, telemetry } = this.#o;
    if (logic.transformPage && spans.count > 0) {
      const escapedKeys = new Uint8Array(spans.count);
      for (let i = 0; i < spans.count; i++) {
        if (((spans.flags[i] as number) & SpanFlag.ESCAPED_KEY) !== 0) escapedKeys[i] = 1;
      }
      const edits = await logic.transformPage({
        body,
        offsets: spans.offsets,
        count: spans.count,
        escapedKeys,
      });
      // The script's thread may have taken the bytes and given them back.
      const bytes = edits.body
        ? Buffer.from(edits.body.buffer, edits.body.byteOffset, edits.body.byteLength)
        : body;
      const fields: { known?: KnownFields } = {};
      const ndjson = renderNdjson(bytes, spans, this.#tags, { edits, output: this.#outputOf, fields });
      const dropped = edits.edits.reduce((n, e) => (e === EventEdit.DROPPED ? n + 1 : n), 0);
      if (dropped > 0) {
        telemetry.eventsDropped({ source: this.name, events: dropped, reason: 'script' });
      }
      return batchFromNdjson(this.name, this.#domain, ndjson, fields.known);
    }
    if (!logic.transform || spans.count === 0) {
      const fields: { known?: KnownFields } = {};
      const ndjson = renderNdjson(body, spans, this.#tags, { output: this.#outputOf, fields });
      return batchFromNdjson(this.name, this.#domain, ndjson, fields.known);
    }
    const events: JsonObject[] = [];
    for (let i = 0; i < spans.count; i++) events.push(parseEvent(body, spans, i));
    const results = await logic.transform(events);
    if (results.length !== events.length) {
      throw new OktailError(
        'SCRIPT_ERROR',
        `${logic.name}: transform returned ${results.length} results for ${events.length} events`,
        true,
      );
    }
    const kept = results.filter((e): e is JsonObject => e !== null);
    if (kept.length < events.length) {
      telemetry.eventsDropped({ source: this.name, events: events.length - kept.length, reason: 'script' });
    }
    return batchFromNdjson(this.name, this.#domain, renderObjects(kept, this.#tags));
  }

  /** One page, retried until it arrives whole or a non-retryable answer halts the source. */
  async #fetchPage(url: URL, signal: AbortSignal, buffer: 0 | 1): Promise<FetchedBody> {
    const { client, limiter, telemetry } = this.#o;
    for (let attempt = 0; ; attempt++) {
      const done = await limiter.acquire(signal, (wait) =>
        telemetry.rateLimitWait({ source: this.name, waitMs: Math.round(wait.ms), reason: wait.reason }),
      );
      let info: RateLimitInfo | null = null;
      let failure: unknown;
      try {
        const page = await client.fetch(url, signal, buffer);
        info = readRateLimit(page.headers, page.receivedAtMs);
        const spans = scanBody(page);
        telemetry.pageFetched({
          source: this.name,
          events: spans.count,
          bytes: page.body.length,
          ms: Math.round(page.ms),
          status: page.status,
        });
        done(info, page.receivedAtMs);
        this.#observe(info);
        return { page, spans };
      } catch (err) {
        if (err instanceof OktaResponseError) info = readRateLimit(err.headers, Date.now());
        done(info, Date.now());
        failure = err;
      }
      this.#observe(info);
      if (signal.aborted) throw signal.reason;
      if (!isOktailError(failure)) throw failure;
      const waitMs = failure.retryable ? Math.round(this.#retryWait(failure, attempt, info)) : null;
      // A final answer (401, 403, ...) is counted too, before it halts the source.
      if (waitMs !== null || failure instanceof OktaResponseError) {
        telemetry.requestFailed({
          source: this.name,
          status: failure instanceof OktaResponseError ? failure.status : null,
          code: failure.code,
          error: failure.message,
          attempt: attempt + 1,
          retryInMs: waitMs,
        });
      }
      if (waitMs === null) throw failure;
      await sleep(waitMs, signal);
    }
  }

  #observe(info: RateLimitInfo | null): void {
    if (info && info.limit > 0) {
      this.#o.telemetry.rateLimitObserved({
        source: this.name,
        limit: info.limit,
        remaining: info.remaining,
        resetInMs: info.resetInMs,
      });
    }
  }

  #retryWait(err: OktailError, attempt: number, info: RateLimitInfo | null): number {
    if (err.code === 'OKTA_RATE_LIMITED') {
      // A concurrency 429 (limit 0) clears as soon as other requests finish: a short jittered pause.
      if (info && info.limit === 0) return 1000 + this.#random() * 2000;
      // The limiter saw remaining=0 and the reset time, so the next acquire waits for the window.
      if (info) return 0;
    }
    const { initialBackoffMs, maxBackoffMs } = this.#o.retry;
    const ceiling = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(attempt, 30));
    return ceiling / 2 + this.#random() * (ceiling / 2);
  }
}

interface FetchedBody {
  page: FetchedPage;
  spans: EventSpans;
}

type ReadAheadResult = { ok: true; page: FetchedBody } | { ok: false; error: unknown };

/** The next page of a cycle, being fetched while the current one is delivered. */
interface ReadAhead {
  result: Promise<ReadAheadResult>;
  abort: () => void;
}

/** A 200 whose body is not a whole JSON array of events is a failed fetch like any other: retried. */
function scanBody(page: FetchedPage): EventSpans {
  try {
    return scanPage(page.body);
  } catch (err) {
    throw new OktaResponseError(
      'OKTA_FETCH_FAILED',
      `Failed to fetch Okta system logs. Status=${page.status} (${errorMessage(err)})`,
      true,
      page.status,
      {},
      page.headers,
      err,
    );
  }
}

function pageMeta(page: FetchedPage, spans: EventSpans): PageMeta {
  const ref = (i: number): EventRef => eventRef(page.body, spans, i);
  return {
    status: page.status,
    url: page.url,
    headers: page.headers,
    links: parseLinks(page.headers['link']),
    count: spans.count,
    first: spans.count > 0 ? ref(0) : null,
    last: spans.count > 0 ? ref(spans.count - 1) : null,
  };
}
