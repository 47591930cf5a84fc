import { sleep } from '../../core/async.js';
import { OktailError } from '../../core/errors.js';
import {
  eventFields,
  isContiguous,
  ndjsonBytes,
  parseTimestamp,
  type EventFields,
} from '../../core/event-batch.js';
import type { EventBatch, Sink, WriteResult } from '../../core/sink.js';
import type { Logger } from '../../telemetry/logger.js';
import type { TelemetrySink } from '../../telemetry/telemetry.js';

/** One event of a request as a plain object: what `SinkItems.item(i)` gives, and what `itemsOf` wraps. */
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

/**
 * The events of one request: a view over runs of the pages they came from, with no object per event.
 * Fields are read from the page's bytes when asked for (see `eventFields`), so a driver pays only for
 * the fields it frames with.
 */
export interface SinkItems {
  readonly length: number;
  /** Tagged JSON of event i (no newline): a view of the page's bytes. */
  bytes(i: number): Buffer;
  /** Byte length of event i (no newline). */
  byteLength(i: number): number;
  /** Copies event i's bytes into `target` at `offset`; returns the number of bytes copied. */
  copyBytes(i: number, target: Buffer, offset: number): number;
  uuid(i: number): string | null;
  published(i: number): string | null;
  /** `published` as epoch milliseconds, read without making a string; NaN when absent or not a date. */
  publishedMs(i: number): number;
  eventType(i: number): string | null;
  severity(i: number): string | null;
  /** oktail source name of event i. */
  source(i: number): string;
  /** Org host of event i. */
  domain(i: number): string;
  /** Every event followed by "\n": the pages' own bytes, copied only when the events are not one run. */
  ndjson(): Buffer;
  /** Event i as a plain object (for messages and tests; framing should use the accessors). */
  item(i: number): SinkItem;
  /** The batch event i came from (a driver that prepared a request body per batch finds it by it). */
  batch?(i: number): EventBatch;
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
  send(items: SinkItems, signal: AbortSignal): Promise<SendOutcome>;
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

/** Events `from` to `to` (exclusive) of one batch, all handed over by one `write` call. */
interface Run {
  readonly batch: EventBatch;
  readonly fields: EventFields;
  readonly from: number;
  readonly to: number;
  readonly owner: Owner;
}

/** Events sent together, attempt after attempt, until accepted or given up. */
interface Group {
  runs: Run[];
  /** Aborted when every owner stopped waiting (shutdown): no one would use the answer. */
  readonly abandon: AbortController;
}

const LF = 0x0a;

/** Bytes event k takes in a request: its bytes plus a separator. */
function sizeOf(batch: EventBatch, k: number): number {
  return (batch.ends[k] as number) - (batch.starts[k] as number) + 1;
}

function runBytes(run: Run): number {
  return ndjsonBytes(run.batch, run.from, run.to);
}

function countEvents(runs: readonly Run[]): number {
  let n = 0;
  for (const run of runs) n += run.to - run.from;
  return n;
}

/** The events (by their index in the request) for which `keep` holds, as runs. */
function selectRuns(runs: readonly Run[], keep: (index: number) => boolean): Run[] {
  const out: Run[] = [];
  let index = 0;
  for (const run of runs) {
    let from = -1;
    for (let k = run.from; k < run.to; k++, index++) {
      if (keep(index)) {
        if (from < 0) from = k;
      } else if (from >= 0) {
        out.push({ ...run, from, to: k });
        from = -1;
      }
    }
    if (from >= 0) out.push(from === run.from ? run : { ...run, from });
  }
  return out;
}

/** The runs split after their first `n` events. */
function splitRuns(runs: readonly Run[], n: number): [Run[], Run[]] {
  const first: Run[] = [];
  const second: Run[] = [];
  let left = n;
  for (const run of runs) {
    const size = run.to - run.from;
    if (left >= size) first.push(run);
    else if (left <= 0) second.push(run);
    else {
      first.push({ ...run, to: run.from + left });
      second.push({ ...run, from: run.from + left });
    }
    left -= size;
  }
  return [first, second];
}

/** `SinkItems` over runs of batches. */
class RunItems implements SinkItems {
  readonly length: number;
  readonly #runs: readonly Run[];
  /** Request index of each run's first event, then the length. */
  readonly #offsets: Uint32Array;
  /** The run of the last lookup: drivers mostly walk the events in order. */
  #last = 0;

  constructor(runs: readonly Run[]) {
    this.#runs = runs;
    this.#offsets = new Uint32Array(runs.length + 1);
    let n = 0;
    runs.forEach((run, j) => {
      this.#offsets[j] = n;
      n += run.to - run.from;
    });
    this.#offsets[runs.length] = n;
    this.length = n;
  }

  /** The run holding request event i. */
  #run(i: number): number {
    if (!(i >= 0 && i < this.length)) throw new RangeError(`no event ${i} in a request of ${this.length}`);
    const o = this.#offsets;
    const last = this.#last;
    if (i >= (o[last] as number) && i < (o[last + 1] as number)) return last;
    let lo = 0;
    let hi = this.#runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((o[mid] as number) <= i) lo = mid;
      else hi = mid - 1;
    }
    this.#last = lo;
    return lo;
  }

  /** Index in its batch of request event i (after `#run(i)` returned j). */
  #k(i: number, j: number): number {
    return (this.#runs[j] as Run).from + i - (this.#offsets[j] as number);
  }

  bytes(i: number): Buffer {
    const j = this.#run(i);
    const { batch } = this.#runs[j] as Run;
    const k = this.#k(i, j);
    return batch.data.subarray(batch.starts[k], batch.ends[k]);
  }

  byteLength(i: number): number {
    const j = this.#run(i);
    return sizeOf((this.#runs[j] as Run).batch, this.#k(i, j)) - 1;
  }

  copyBytes(i: number, target: Buffer, offset: number): number {
    const j = this.#run(i);
    const { batch } = this.#runs[j] as Run;
    const k = this.#k(i, j);
    return batch.data.copy(target, offset, batch.starts[k], batch.ends[k]);
  }

  uuid(i: number): string | null {
    const j = this.#run(i);
    return (this.#runs[j] as Run).fields.uuid(this.#k(i, j));
  }

  published(i: number): string | null {
    const j = this.#run(i);
    return (this.#runs[j] as Run).fields.published(this.#k(i, j));
  }

  publishedMs(i: number): number {
    const j = this.#run(i);
    return (this.#runs[j] as Run).fields.publishedMs(this.#k(i, j));
  }

  eventType(i: number): string | null {
    const j = this.#run(i);
    return (this.#runs[j] as Run).fields.eventType(this.#k(i, j));
  }

  severity(i: number): string | null {
    const j = this.#run(i);
    return (this.#runs[j] as Run).fields.severity(this.#k(i, j));
  }

  source(i: number): string {
    return (this.#runs[this.#run(i)] as Run).batch.source;
  }

  domain(i: number): string {
    return (this.#runs[this.#run(i)] as Run).batch.domain;
  }

  batch(i: number): EventBatch {
    return (this.#runs[this.#run(i)] as Run).batch;
  }

  ndjson(): Buffer {
    if (this.#runs.length === 1) {
      const run = this.#runs[0] as Run;
      if (isContiguous(run.batch, run.from, run.to)) {
        return run.batch.data.subarray(
          run.batch.starts[run.from],
          (run.batch.ends[run.to - 1] as number) + 1,
        );
      }
    }
    let total = 0;
    for (const run of this.#runs) total += runBytes(run);
    const out = Buffer.allocUnsafe(total);
    let at = 0;
    for (const run of this.#runs) {
      const { data, starts, ends } = run.batch;
      if (isContiguous(run.batch, run.from, run.to)) {
        at += data.copy(out, at, starts[run.from], (ends[run.to - 1] as number) + 1);
        continue;
      }
      for (let k = run.from; k < run.to; k++) {
        at += data.copy(out, at, starts[k], ends[k]);
        out[at++] = LF;
      }
    }
    return out;
  }

  item(i: number): SinkItem {
    return {
      bytes: this.bytes(i),
      uuid: this.uuid(i),
      published: this.published(i),
      eventType: this.eventType(i),
      severity: this.severity(i),
      source: this.source(i),
      domain: this.domain(i),
    };
  }
}

/** `SinkItems` over plain objects: for drivers' unit tests and callers that hold events one by one. */
export function itemsOf(list: readonly SinkItem[]): SinkItems {
  const at = (i: number): SinkItem => {
    const item = list[i];
    if (item === undefined) throw new RangeError(`no event ${i} in a request of ${list.length}`);
    return item;
  };
  return {
    length: list.length,
    bytes: (i) => at(i).bytes,
    byteLength: (i) => at(i).bytes.length,
    copyBytes: (i, target, offset) => at(i).bytes.copy(target, offset),
    uuid: (i) => at(i).uuid,
    published: (i) => at(i).published,
    publishedMs: (i) => parseTimestamp(at(i).published),
    eventType: (i) => at(i).eventType,
    severity: (i) => at(i).severity,
    source: (i) => at(i).source,
    domain: (i) => at(i).domain,
    ndjson: () => Buffer.concat(list.flatMap((item) => [item.bytes, NEWLINE])),
    item: at,
  };
}

const NEWLINE = Buffer.from('\n');

/**
 * The exporter helper (modelled on the OpenTelemetry Collector's exporterhelper): cuts batches into
 * requests by events, bytes and time, combines small batches from several sources, keeps at most
 * `request.concurrency` requests in flight, retries transient failures without limit (exponential backoff
 * with full jitter, honouring Retry-After) and answers each `write` only once every one of its events was
 * acknowledged. Memory is bounded by what callers have handed over and not yet had answered: the pipeline
 * keeps one page per source in flight. Events are held as runs of the pages they came in (no object per
 * event), and a request is a view over such runs.
 */
class NetworkSink implements Sink {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly kind = 'acknowledged' as const;
  readonly #o: NetworkSinkOptions;
  readonly #random: () => number;
  #buffer: Run[] = [];
  #bufferEvents = 0;
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
  /** The sources routed here now, once the pipeline said so (sources can come and go at run time). */
  #routed: readonly string[] | null = null;
  /** Failure streak: when it started and how many attempts failed, for one warning and one recovery line. */
  #streak: { since: number; attempts: number } | null = null;

  constructor(options: NetworkSinkOptions) {
    this.name = options.name;
    this.inputs = options.inputs;
    this.#o = options;
    this.#random = options.random ?? Math.random;
  }

  async open(): Promise<void> {}

  routed(sources: readonly string[]): void {
    this.#routed = [...sources];
    // A source that went away may have been the only one not waiting: what is buffered may go now.
    this.#pump();
  }

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
          if (group.runs.every((r) => r.owner.settled)) group.abandon.abort();
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
      const run: Run = { batch, fields: eventFields(batch), from: 0, to: batch.count, owner };
      this.#buffer.push(run);
      this.#bufferEvents += batch.count;
      this.#bufferBytes += runBytes(run);
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
      const full = this.#bufferEvents >= maxEvents || this.#bufferBytes >= maxBytes;
      // The pipeline hands over one page per source and waits for its answer: once every input waits,
      // nothing more can arrive before a flush, and waiting for the batch timeout would only add latency.
      const everyInputWaits = (this.#routed ?? this.inputs).every((source) => this.#waiting.has(source));
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
  #cut(): Run[] {
    const { maxEvents, maxBytes } = this.#settings;
    const out: Run[] = [];
    let n = 0;
    let bytes = 0;
    while (this.#buffer.length > 0 && n < maxEvents) {
      const run = this.#buffer[0] as Run;
      let k = run.from;
      while (k < run.to && n < maxEvents) {
        const size = sizeOf(run.batch, k);
        if (n > 0 && bytes + size > maxBytes) break;
        bytes += size;
        n++;
        k++;
      }
      if (k === run.to) {
        out.push(run);
        this.#buffer.shift();
        continue;
      }
      if (k > run.from) out.push({ ...run, to: k });
      this.#buffer[0] = { ...run, from: k };
      break;
    }
    this.#bufferEvents -= n;
    this.#bufferBytes -= bytes;
    return out;
  }

  /** Events whose caller stopped waiting are not sent. */
  #dropSettled(): void {
    if (!this.#buffer.some((r) => r.owner.settled)) return;
    this.#buffer = this.#buffer.filter((r) => !r.owner.settled);
    this.#bufferEvents = countEvents(this.#buffer);
    this.#bufferBytes = this.#buffer.reduce((sum, r) => sum + runBytes(r), 0);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #start(runs: Run[]): void {
    this.#inFlight++;
    this.#reportInFlight();
    const run: Promise<void> = this.#deliver(runs)
      .catch((err: unknown) => {
        // A bug in a driver must not leave callers waiting for ever.
        this.#fail(runs, err instanceof Error ? err : new Error(String(err)));
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
  async #deliver(runs: Run[]): Promise<void> {
    const queue: Run[][] = [runs];
    while (queue.length > 0) {
      const group: Group = { runs: queue.shift() as Run[], abandon: new AbortController() };
      const split = await this.#attempt(group);
      if (split) queue.unshift(...split);
    }
  }

  /** Sends a group until it is accepted, fails for good, or must be split (returns the halves). */
  async #attempt(group: Group): Promise<Run[][] | null> {
    const { driver } = this.#o;
    const { timeoutMs } = this.#o.settings.request;
    for (let attempt = 0; ; attempt++) {
      group.runs = group.runs.filter((r) => !r.owner.settled);
      if (group.runs.length === 0) return null;
      for (const r of group.runs) r.owner.groups.add(group);
      const runs = group.runs;
      const items = new RunItems(runs);
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = AbortSignal.any([group.abandon.signal, timeout]);
      const started = performance.now();
      let outcome: SendOutcome;
      try {
        outcome = await driver.send(items, signal);
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        outcome = timeout.aborted
          ? { kind: 'retry', reason: 'timeout', error: new Error(`no answer within ${timeoutMs / 1000} s`) }
          : { kind: 'retry', reason: 'network', error };
      }
      const ms = performance.now() - started;
      for (const r of runs) r.owner.groups.delete(group);
      if (group.abandon.signal.aborted) return null;

      if (outcome.kind === 'ok') {
        this.#accepted(runs, ms);
        return null;
      }
      if (outcome.kind === 'permanent') {
        this.#report('permanent', 'permanent', outcome.error, items.length, ms, null);
        this.#fail(runs, outcome.error);
        return null;
      }
      if (outcome.kind === 'split') {
        this.#report('split', 'too_large', outcome.error, items.length, ms, null);
        if (items.length === 1) {
          this.#fail(
            runs,
            new Error(`${outcome.error.message} (a single event is larger than the destination accepts)`),
          );
          return null;
        }
        return splitRuns(runs, Math.ceil(items.length / 2));
      }
      let retryAfterMs: number | undefined;
      let reason: string;
      let error: Error;
      if (outcome.kind === 'partial') {
        const failed = new Map<number, { retryable: boolean; reason: string }>();
        for (const f of outcome.failed) {
          if (Number.isInteger(f.index) && f.index >= 0 && f.index < items.length) failed.set(f.index, f);
        }
        const ok = selectRuns(runs, (i) => !failed.has(i));
        if (ok.length > 0) this.#accepted(ok, ms);
        const permanent = selectRuns(runs, (i) => failed.get(i)?.retryable === false);
        const first = [...failed.values()].find((f) => !f.retryable);
        if (permanent.length > 0 && first) {
          const rejected = countEvents(permanent);
          const err = new Error(`${rejected} of ${items.length} events rejected: ${first.reason}`);
          this.#report('permanent', 'rejected', err, rejected, ms, null);
          this.#fail(permanent, err);
        }
        group.runs = selectRuns(runs, (i) => failed.get(i)?.retryable === true);
        if (group.runs.length === 0) return null;
        const example = [...failed.values()].find((f) => f.retryable);
        reason = 'partial';
        error = new Error(
          `${countEvents(group.runs)} of ${items.length} events not accepted: ${example?.reason}`,
        );
      } else {
        reason = outcome.reason;
        error = outcome.error;
        retryAfterMs = outcome.retryAfterMs;
      }
      const waitMs = this.#backoff(attempt, retryAfterMs);
      this.#report('retryable', reason, error, countEvents(group.runs), ms, waitMs);
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

  #accepted(runs: readonly Run[], ms: number): void {
    let bytes = 0;
    for (const run of runs) bytes += runBytes(run) - (run.to - run.from);
    this.#o.telemetry.sinkRequestSent({
      sink: this.name,
      type: this.#o.type,
      events: countEvents(runs),
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
    for (const run of runs) {
      const { owner } = run;
      if (owner.settled) continue;
      owner.remaining -= run.to - run.from;
      if (owner.remaining === 0) owner.settle({ kind: 'ok' });
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

  /** Halts every caller with events in `runs`, naming the sink and the destination's own words. */
  #fail(runs: readonly Run[], cause: Error): void {
    const error = new OktailError(
      'SINK_WRITE_FAILED',
      `Sink ${this.name} (${this.#o.type}) rejected events for good: ${cause.message}. ` +
        "Fix the destination or the sink's settings, then restart: nothing past the last delivered page was committed",
      false,
      { cause },
    );
    for (const run of runs) run.owner.settle({ kind: 'fatal', error });
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
