import { sleep } from '../../core/async.js';
import { OktailError } from '../../core/errors.js';
import { eventBytes, type EventBatch, type Sink, type WriteResult } from '../../core/sink.js';
import type { Logger } from '../../telemetry/logger.js';
import type { TelemetrySink } from '../../telemetry/telemetry.js';

/** One event inside a request: its bytes (tagged JSON, no newline) and fields. */
export interface SinkItem {
  readonly bytes: Buffer;
  readonly uuid: string | null;
  readonly published: string | null;
  readonly eventType: string | null;
  readonly severity: string | null;
  /** oktail source name. */
  readonly source: string;
  /** Org host. */
  readonly domain: string;
}

export type SendOutcome =
  | { kind: 'ok' }
  /** Some items failed (e.g. a bulk response): `index` is into the items given to send(). */
  | { kind: 'partial'; failed: { index: number; retryable: boolean; reason: string }[] }
  /** Whole request, transient. */
  | { kind: 'retry'; reason: string; error: Error; retryAfterMs?: number }
  /** 413: halve and resend. */
  | { kind: 'split'; error: Error }
  /** Whole request, never retried. */
  | { kind: 'permanent'; error: Error };

export interface SinkDriver {
  /**
   * Sends one request holding `items`; resolves only once the destination durably accepted them
   * (for Splunk HEC with acknowledgements: once the ackId is reported true). `signal` aborts
   * (request timeout or shutdown).
   */
  send(items: readonly SinkItem[], signal: AbortSignal): Promise<SendOutcome>;
  close?(): Promise<void>;
}

export interface NetworkSinkSettings {
  batch: { maxEvents: number; maxBytes: number; timeoutMs: number };
  request: { timeoutMs: number; concurrency: number };
  retry: { initialBackoffMs: number; maxBackoffMs: number };
}

export interface NetworkSinkOptions {
  name: string;
  inputs: readonly string[];
  /** The sink type, for metric labels. */
  type: string;
  guarantee: 'exactly-once' | 'at-least-once';
  driver: SinkDriver;
  settings: NetworkSinkSettings;
  telemetry: TelemetrySink;
  log: Logger;
  random?: () => number;
}

/** Wraps a driver into a `Sink` (kind 'acknowledged'). */
export function createNetworkSink(options: NetworkSinkOptions): Sink {
  return new NetworkSink(options);
}

/** A `write` call waiting for its events to be acknowledged. */
interface Owner {
  remaining: number;
  settled: boolean;
  settle(result: WriteResult): void;
  /** The request groups holding some of its events, to abandon them when nobody waits any more. */
  groups: Set<Group>;
}

interface Entry {
  readonly item: SinkItem;
  readonly owner: Owner;
  /** Bytes the event takes in a request (its bytes plus a separator). */
  readonly size: number;
}

/** Events sent together, attempt after attempt, until accepted or given up. */
interface Group {
  entries: Entry[];
  /** Aborted when every owner stopped waiting (shutdown): no one would use the answer. */
  readonly abandon: AbortController;
}

/**
 * The exporter helper (modelled on the OpenTelemetry Collector's exporterhelper): cuts batches into
 * requests by events, bytes and time, combines small batches from several sources, keeps at most
 * `request.concurrency` requests in flight, retries transient failures without limit (exponential backoff
 * with full jitter, honouring Retry-After) and answers each `write` only once every one of its events was
 * acknowledged. Memory is bounded by what callers have handed over and not yet had answered: the pipeline
 * keeps one page per source in flight.
 */
class NetworkSink implements Sink {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly kind = 'acknowledged' as const;
  readonly guarantee: 'exactly-once' | 'at-least-once';
  readonly #o: NetworkSinkOptions;
  readonly #random: () => number;
  #buffer: Entry[] = [];
  #bufferBytes = 0;
  #timer: NodeJS.Timeout | null = null;
  /** The buffer waited its batch timeout (or the sink is closing): send what is there. */
  #due = false;
  #inFlight = 0;
  readonly #running = new Set<Promise<void>>();
  #closing = false;
  #closed: Promise<void> | null = null;
  /** Unanswered `write` calls per source. */
  readonly #waiting = new Map<string, number>();
  /** Failure streak: when it started and how many attempts failed, for one warning and one recovery line. */
  #streak: { since: number; attempts: number } | null = null;

  constructor(options: NetworkSinkOptions) {
    this.name = options.name;
    this.inputs = options.inputs;
    this.guarantee = options.guarantee;
    this.#o = options;
    this.#random = options.random ?? Math.random;
  }

  async open(): Promise<void> {}

  write(batch: EventBatch, signal: AbortSignal): Promise<WriteResult> {
    if (this.#closing) {
      return Promise.resolve({
        kind: 'fatal',
        error: new OktailError('SINK_WRITE_FAILED', `Sink ${this.name} is closed`),
      });
    }
    if (batch.count === 0) return Promise.resolve({ kind: 'ok' });
    if (signal.aborted) return Promise.resolve({ kind: 'retry', error: abortError(signal) });
    return new Promise<WriteResult>((resolve) => {
      const onAbort = () => {
        owner.settle({ kind: 'retry', error: abortError(signal) });
        this.#dropSettled();
        for (const group of owner.groups) {
          if (group.entries.every((e) => e.owner.settled)) group.abandon.abort();
        }
      };
      const owner: Owner = {
        remaining: batch.count,
        settled: false,
        groups: new Set(),
        settle: (result) => {
          if (owner.settled) return;
          owner.settled = true;
          const left = (this.#waiting.get(batch.source) ?? 1) - 1;
          if (left > 0) this.#waiting.set(batch.source, left);
          else this.#waiting.delete(batch.source);
          signal.removeEventListener('abort', onAbort);
          resolve(result);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.set(batch.source, (this.#waiting.get(batch.source) ?? 0) + 1);
      const { uuids, published, eventTypes, severities } = batch;
      for (let i = 0; i < batch.count; i++) {
        const bytes = eventBytes(batch, i);
        const item: SinkItem = {
          bytes,
          uuid: uuids[i] ?? null,
          published: published[i] ?? null,
          eventType: eventTypes[i] ?? null,
          severity: severities[i] ?? null,
          source: batch.source,
          domain: batch.domain,
        };
        this.#buffer.push({ item, owner, size: bytes.length + 1 });
        this.#bufferBytes += bytes.length + 1;
      }
      this.#pump();
    });
  }

  checkpoint(): undefined {
    return undefined;
  }

  /** Sends what is buffered without waiting for the batch timeout, waits for requests in flight. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      this.#due = true;
      this.#pump();
      while (this.#running.size > 0 || this.#buffer.length > 0) {
        if (this.#running.size === 0) this.#pump();
        await Promise.allSettled([...this.#running]);
      }
      this.#clearTimer();
      await this.#o.driver.close?.();
    })();
    return this.#closed;
  }

  /** Starts requests while there are slots and a full (or due) batch. */
  #pump(): void {
    const { maxEvents, maxBytes, timeoutMs, concurrency } = this.#settings;
    this.#dropSettled();
    while (this.#buffer.length > 0 && this.#inFlight < concurrency) {
      const full = this.#buffer.length >= maxEvents || this.#bufferBytes >= maxBytes;
      // The pipeline hands over one page per source and waits for its answer: once every input waits,
      // nothing more can arrive before a flush, and waiting for the batch timeout would only add latency.
      const everyInputWaits = this.inputs.every((source) => this.#waiting.has(source));
      if (!full && !this.#due && !everyInputWaits && timeoutMs > 0) {
        this.#timer ??= setTimeout(() => {
          this.#timer = null;
          this.#due = true;
          this.#pump();
        }, timeoutMs);
        return;
      }
      this.#start(this.#cut());
    }
    if (this.#buffer.length === 0) {
      this.#due = this.#closing;
      this.#clearTimer();
    }
  }

  get #settings() {
    const { batch, request } = this.#o.settings;
    return {
      maxEvents: batch.maxEvents,
      maxBytes: batch.maxBytes,
      timeoutMs: batch.timeoutMs,
      concurrency: request.concurrency,
    };
  }

  /** The next request's events: up to max_events and max_bytes (at least one event). */
  #cut(): Entry[] {
    const { maxEvents, maxBytes } = this.#settings;
    let n = 0;
    let bytes = 0;
    while (n < this.#buffer.length && n < maxEvents) {
      const size = (this.#buffer[n] as Entry).size;
      if (n > 0 && bytes + size > maxBytes) break;
      bytes += size;
      n++;
    }
    const entries = this.#buffer.splice(0, n);
    this.#bufferBytes -= bytes;
    return entries;
  }

  /** Events whose caller stopped waiting are not sent. */
  #dropSettled(): void {
    if (!this.#buffer.some((e) => e.owner.settled)) return;
    this.#buffer = this.#buffer.filter((e) => !e.owner.settled);
    this.#bufferBytes = this.#buffer.reduce((sum, e) => sum + e.size, 0);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #start(entries: Entry[]): void {
    this.#inFlight++;
    this.#reportInFlight();
    const run: Promise<void> = this.#deliver(entries)
      .catch((err: unknown) => {
        // A bug in a driver must not leave callers waiting for ever.
        this.#fail(entries, err instanceof Error ? err : new Error(String(err)));
      })
      .finally(() => {
        this.#inFlight--;
        this.#running.delete(run);
        this.#reportInFlight();
        this.#pump();
      });
    this.#running.add(run);
  }

  #reportInFlight(): void {
    this.#o.telemetry.sinkInFlight({ sink: this.name, type: this.#o.type, requests: this.#inFlight });
  }

  /** Delivers a request's events, splitting on 413 and retrying what failed transiently. */
  async #deliver(entries: Entry[]): Promise<void> {
    const queue: Entry[][] = [entries];
    while (queue.length > 0) {
      const group: Group = { entries: queue.shift() as Entry[], abandon: new AbortController() };
      const split = await this.#attempt(group);
      if (split) queue.unshift(...split);
    }
  }

  /** Sends a group until it is accepted, fails for good, or must be split (returns the halves). */
  async #attempt(group: Group): Promise<Entry[][] | null> {
    const { driver } = this.#o;
    const { timeoutMs } = this.#o.settings.request;
    for (let attempt = 0; ; attempt++) {
      group.entries = group.entries.filter((e) => !e.owner.settled);
      if (group.entries.length === 0) return null;
      for (const e of group.entries) e.owner.groups.add(group);
      const entries = group.entries;
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = AbortSignal.any([group.abandon.signal, timeout]);
      const started = performance.now();
      let outcome: SendOutcome;
      try {
        outcome = await driver.send(
          entries.map((e) => e.item),
          signal,
        );
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        outcome = timeout.aborted
          ? { kind: 'retry', reason: 'timeout', error: new Error(`no answer within ${timeoutMs / 1000} s`) }
          : { kind: 'retry', reason: 'network', error };
      }
      const ms = performance.now() - started;
      for (const e of entries) e.owner.groups.delete(group);
      if (group.abandon.signal.aborted) return null;

      if (outcome.kind === 'ok') {
        this.#accepted(entries, ms);
        return null;
      }
      if (outcome.kind === 'permanent') {
        this.#report('permanent', 'permanent', outcome.error, entries.length, ms, null);
        this.#fail(entries, outcome.error);
        return null;
      }
      if (outcome.kind === 'split') {
        this.#report('split', 'too_large', outcome.error, entries.length, ms, null);
        if (entries.length === 1) {
          this.#fail(
            entries,
            new Error(`${outcome.error.message} (a single event is larger than the destination accepts)`),
          );
          return null;
        }
        const half = Math.ceil(entries.length / 2);
        return [entries.slice(0, half), entries.slice(half)];
      }
      let retryAfterMs: number | undefined;
      let reason: string;
      let error: Error;
      if (outcome.kind === 'partial') {
        const failed = new Map<number, { retryable: boolean; reason: string }>();
        for (const f of outcome.failed) {
          if (Number.isInteger(f.index) && f.index >= 0 && f.index < entries.length) failed.set(f.index, f);
        }
        const ok = entries.filter((_, i) => !failed.has(i));
        if (ok.length > 0) this.#accepted(ok, ms);
        const permanent = entries.filter((_, i) => failed.get(i)?.retryable === false);
        const first = [...failed.values()].find((f) => !f.retryable);
        if (permanent.length > 0 && first) {
          const err = new Error(`${permanent.length} of ${entries.length} events rejected: ${first.reason}`);
          this.#report('permanent', 'rejected', err, permanent.length, ms, null);
          this.#fail(permanent, err);
        }
        group.entries = entries.filter((_, i) => failed.get(i)?.retryable === true);
        if (group.entries.length === 0) return null;
        const example = [...failed.values()].find((f) => f.retryable);
        reason = 'partial';
        error = new Error(
          `${group.entries.length} of ${entries.length} events not accepted: ${example?.reason}`,
        );
      } else {
        reason = outcome.reason;
        error = outcome.error;
        retryAfterMs = outcome.retryAfterMs;
      }
      const waitMs = this.#backoff(attempt, retryAfterMs);
      this.#report('retryable', reason, error, group.entries.length, ms, waitMs);
      try {
        await sleep(waitMs, group.abandon.signal);
      } catch {
        return null;
      }
    }
  }

  /** Full jitter: a uniform wait up to the exponential ceiling; Retry-After, when given, wins. */
  #backoff(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined && retryAfterMs >= 0) return retryAfterMs;
    const { initialBackoffMs, maxBackoffMs } = this.#o.settings.retry;
    const ceiling = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(attempt, 30));
    return Math.round(this.#random() * ceiling);
  }

  #accepted(entries: Entry[], ms: number): void {
    let bytes = 0;
    for (const e of entries) bytes += e.item.bytes.length;
    this.#o.telemetry.sinkRequestSent({
      sink: this.name,
      type: this.#o.type,
      events: entries.length,
      bytes,
      ms: Math.round(ms),
    });
    if (this.#streak) {
      const { since, attempts } = this.#streak;
      this.#streak = null;
      this.#o.telemetry.sinkRecovered({
        sink: this.name,
        type: this.#o.type,
        attempts,
        ms: Math.round(Date.now() - since),
      });
    }
    for (const e of entries) {
      if (e.owner.settled) continue;
      if (--e.owner.remaining === 0) e.owner.settle({ kind: 'ok' });
    }
  }

  #report(
    kind: 'retryable' | 'permanent' | 'split',
    reason: string,
    error: Error,
    events: number,
    ms: number,
    retryInMs: number | null,
  ): void {
    let firstOfStreak = false;
    if (kind === 'retryable') {
      firstOfStreak = this.#streak === null;
      this.#streak ??= { since: Date.now(), attempts: 0 };
      this.#streak.attempts++;
    }
    this.#o.telemetry.sinkRequestFailed({
      sink: this.name,
      type: this.#o.type,
      kind,
      reason: labelSafe(reason),
      error: error.message,
      events,
      ms: Math.round(ms),
      retryInMs,
      firstOfStreak,
    });
  }

  /** Halts every caller with events in `entries`, naming the sink and the destination's own words. */
  #fail(entries: Entry[], cause: Error): void {
    const error = new OktailError(
      'SINK_WRITE_FAILED',
      `Sink ${this.name} (${this.#o.type}) rejected events for good: ${cause.message}. ` +
        "Fix the destination or the sink's settings, then restart: nothing past the last delivered page was committed",
      false,
      { cause },
    );
    for (const e of entries) e.owner.settle({ kind: 'fatal', error });
  }
}

/** A bounded, plain metric label from a driver's reason. */
function labelSafe(reason: string): string {
  const plain = reason
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 40);
  return plain === '' ? 'other' : plain;
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('shutting down');
}
