import type { EventBatch } from '../core/sink.js';
import type { PipelineSource } from '../pipeline/pipeline.js';
import type { TelemetryEvent, TelemetrySink } from '../telemetry/telemetry.js';

/*
 * What the console shows about each source, gathered in-process from the pipeline's telemetry (no
 * events there: counts per page) and, for the recent-events table, from a tap on the source's pages.
 */

export type SourceState =
  'starting' | 'collecting' | 'caught up' | 'retrying' | 'halted' | 'stopped' | 'disabled';

export interface RecentEvent {
  published: string | null;
  eventType: string | null;
  actor: string | null;
  outcome: string | null;
  displayMessage: string | null;
  /** The event as delivered (one NDJSON line). */
  json: string;
}

export interface SourceStatus {
  name: string;
  domain: string;
  state: SourceState;
  /** Why it retries or halted (the source's own message, never a secret). */
  message: string | null;
  events: number;
  eventsPerSecond: number;
  lagSecs: number | null;
  rateLimit: { limit: number; remaining: number } | null;
  lastSuccess: string | null;
  /** Events per minute, oldest first, the last entry being the current minute. */
  perMinute: number[];
  errors: { at: string; message: string }[];
}

const MINUTES = 60;
const MAX_ERRORS = 20;
export const MAX_RECENT = 50;

class SourceRecord {
  state: SourceState = 'starting';
  message: string | null = null;
  events = 0;
  newestPublished: string | null = null;
  rateLimit: { limit: number; remaining: number } | null = null;
  lastSuccess: string | null = null;
  /** minute number (epoch ms / 60 000) -> events delivered in it. */
  readonly minutes = new Map<number, number>();
  /** [epoch ms, events] of deliveries in the last minute, for events/s. */
  readonly lastMinute: [number, number][] = [];
  readonly errors: { at: string; message: string }[] = [];
  recent: RecentEvent[] = [];

  constructor(readonly domain: string) {}
}

export class ConsoleStatus implements TelemetrySink {
  readonly #sources = new Map<string, SourceRecord>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Called when the console adds a source (before the pipeline's `sourceStarted`). */
  track(name: string, domain: string): void {
    const existing = this.#sources.get(name);
    // An edit that keeps the org keeps the history; another org starts afresh.
    if (existing && existing.domain === domain) {
      existing.state = 'starting';
      existing.message = null;
      return;
    }
    this.#sources.set(name, new SourceRecord(domain));
  }

  forget(name: string): void {
    this.#sources.delete(name);
  }

  names(): string[] {
    return [...this.#sources.keys()];
  }

  status(name: string): SourceStatus | undefined {
    const r = this.#sources.get(name);
    if (!r) return undefined;
    const now = this.#now();
    const minute = Math.floor(now / 60_000);
    const perMinute: number[] = [];
    for (let m = minute - MINUTES + 1; m <= minute; m++) perMinute.push(r.minutes.get(m) ?? 0);
    const inLastMinute = r.lastMinute.filter(([at]) => at > now - 60_000).reduce((sum, [, n]) => sum + n, 0);
    return {
      name,
      domain: r.domain,
      state: r.state,
      message: r.message,
      events: r.events,
      eventsPerSecond: Math.round((inLastMinute / 60) * 10) / 10,
      lagSecs:
        r.newestPublished === null
          ? null
          : Math.max(0, Math.round((now - Date.parse(r.newestPublished)) / 1000)),
      rateLimit: r.rateLimit,
      lastSuccess: r.lastSuccess,
      perMinute,
      errors: [...r.errors].reverse(),
    };
  }

  recentEvents(name: string): RecentEvent[] {
    return [...(this.#sources.get(name)?.recent ?? [])].reverse();
  }

  /**
   * Wraps a source so each page's events are recorded once the pipeline asks for the next page: the
   * pipeline does so only after the page was delivered to every sink and committed, so the table shows
   * committed events only.
   */
  tap(src: PipelineSource): PipelineSource {
    const record = (batch: EventBatch) => this.#recordEvents(src.name, batch);
    const inner = src.source;
    return {
      ...src,
      source: {
        async *cycle(state, signal) {
          for await (const page of inner.cycle(state, signal)) {
            yield page;
            record(page.batch);
          }
        },
      },
    };
  }

  /** A source kept in the config but not collected. */
  disabled(name: string, domain: string): void {
    this.track(name, domain);
    const r = this.#sources.get(name);
    if (r) r.state = 'disabled';
  }

  /** Marks a source as stopped by the console (it may be removed or replaced next). */
  stopped(name: string): void {
    const r = this.#sources.get(name);
    if (r) r.state = 'stopped';
  }

  #recordEvents(name: string, batch: EventBatch): void {
    const r = this.#sources.get(name);
    if (!r || batch.count === 0) return;
    const first = Math.max(0, batch.count - MAX_RECENT);
    const added: RecentEvent[] = [];
    for (let i = first; i < batch.count; i++) {
      const json = batch.data.subarray(batch.starts[i], batch.ends[i]).toString('utf8');
      added.push(summarise(json));
    }
    r.recent = [...r.recent, ...added].slice(-MAX_RECENT);
  }

  #get(name: string): SourceRecord | undefined {
    return this.#sources.get(name);
  }

  #error(r: SourceRecord, message: string): void {
    r.errors.push({ at: new Date(this.#now()).toISOString(), message });
    if (r.errors.length > MAX_ERRORS) r.errors.shift();
  }

  sourceStarted(e: TelemetryEvent<'sourceStarted'>): void {
    let r = this.#get(e.source);
    if (!r) {
      r = new SourceRecord(e.domain);
      this.#sources.set(e.source, r);
    }
    r.state = 'collecting';
    r.message = null;
  }
  pageFetched(e: TelemetryEvent<'pageFetched'>): void {
    const r = this.#get(e.source);
    if (!r) return;
    r.lastSuccess = new Date(this.#now()).toISOString();
    if (r.state !== 'halted') {
      r.state = 'collecting';
      r.message = null;
    }
  }
  requestFailed(e: TelemetryEvent<'requestFailed'>): void {
    const r = this.#get(e.source);
    if (!r) return;
    this.#error(r, e.error);
    if (e.retryInMs !== null) {
      r.state = 'retrying';
      r.message = e.error;
    }
  }
  rateLimitObserved(e: TelemetryEvent<'rateLimitObserved'>): void {
    const r = this.#get(e.source);
    if (r) r.rateLimit = { limit: e.limit, remaining: e.remaining };
  }
  rateLimitWait(): void {}
  eventsDropped(): void {}
  batchDelivered(e: TelemetryEvent<'batchDelivered'>): void {
    const r = this.#get(e.source);
    if (!r) return;
    const now = this.#now();
    r.events += e.events;
    if (e.newestPublished !== null) r.newestPublished = e.newestPublished;
    const minute = Math.floor(now / 60_000);
    r.minutes.set(minute, (r.minutes.get(minute) ?? 0) + e.events);
    for (const m of r.minutes.keys()) if (m <= minute - MINUTES) r.minutes.delete(m);
    r.lastMinute.push([now, e.events]);
    while (r.lastMinute.length > 0 && (r.lastMinute[0]?.[0] ?? 0) <= now - 60_000) r.lastMinute.shift();
  }
  sinkRetry(e: TelemetryEvent<'sinkRetry'>): void {
    const r = this.#get(e.source);
    if (!r) return;
    this.#error(r, `sink ${e.sink}: ${e.error}`);
    r.state = 'retrying';
    r.message = `sink ${e.sink}: ${e.error}`;
  }
  checkpointCommitted(): void {}
  sinkRequestSent(): void {}
  sinkRequestFailed(): void {}
  sinkRecovered(): void {}
  sinkInFlight(): void {}
  cycleFinished(e: TelemetryEvent<'cycleFinished'>): void {
    const r = this.#get(e.source);
    if (!r) return;
    r.state = 'caught up';
    r.message = null;
    r.lastSuccess = new Date(this.#now()).toISOString();
    if (e.newestPublished !== null) r.newestPublished = e.newestPublished;
  }
  scriptError(e: TelemetryEvent<'scriptError'>): void {
    const r = this.#get(e.source);
    if (!r) return;
    this.#error(r, e.error);
    r.state = 'retrying';
    r.message = e.error;
  }
  sourceHalted(e: TelemetryEvent<'sourceHalted'>): void {
    const r = this.#get(e.source);
    if (!r) return;
    this.#error(r, `${e.code}: ${e.error}`);
    r.state = 'halted';
    r.message = `${e.code}: ${e.error}`;
  }
}

/** The table's columns from one System Log event; the JSON stays as delivered. */
export function summarise(json: string): RecentEvent {
  let event: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(json);
    if (parsed && typeof parsed === 'object') event = parsed as Record<string, unknown>;
  } catch {
    // A line a custom script shaped differently still shows as JSON.
  }
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const actor = event.actor as { alternateId?: unknown; displayName?: unknown } | undefined;
  const outcome = event.outcome as { result?: unknown } | undefined;
  return {
    published: str(event.published),
    eventType: str(event.eventType),
    actor: str(actor?.alternateId) ?? str(actor?.displayName),
    outcome: str(outcome?.result),
    displayMessage: str(event.displayMessage),
    json,
  };
}
