import type { Logger } from './logger.js';

/**
 * The catalogue of notable happenings. Each writes at most one log line and (where metrics are
 * enabled) updates metrics. Nothing here is called per event: counts arrive per page.
 */
export interface TelemetrySink {
  sourceStarted(e: { source: string; domain: string; script: string; resumed: boolean }): void;
  pageFetched(e: { source: string; events: number; bytes: number; ms: number; status: number }): void;
  requestFailed(e: {
    source: string;
    status: number | null;
    code: string;
    error: string;
    attempt: number;
    /** null: the failure is not retried and the source halts (a `sourceHalted` follows). */
    retryInMs: number | null;
  }): void;
  rateLimitObserved(e: { source: string; limit: number; remaining: number; resetInMs: number }): void;
  rateLimitWait(e: { source: string; waitMs: number; reason: string }): void;
  eventsDropped(e: { source: string; events: number; reason: string }): void;
  batchDelivered(e: {
    source: string;
    events: number;
    bytes: number;
    sinks: string[];
    /** `published` (ISO) of the batch's newest event, for lag. */
    newestPublished: string | null;
  }): void;
  sinkRetry(e: { sink: string; source: string; error: string; retryInMs: number }): void;
  checkpointCommitted(e: { source: string; ms: number }): void;
  cycleFinished(e: {
    source: string;
    pages: number;
    events: number;
    ms: number;
    /** Newest delivered event's `published` (ISO) in the cycle, if any. */
    newestPublished: string | null;
  }): void;
  scriptError(e: { source: string; error: string }): void;
  sourceHalted(e: { source: string; code: string; error: string }): void;
}

export type TelemetryEvent<K extends keyof TelemetrySink> = Parameters<TelemetrySink[K]>[0];

/** Log-only implementation; metrics and progress wrap it. */
export class LogTelemetry implements TelemetrySink {
  constructor(protected readonly log: Logger) {}

  sourceStarted(e: TelemetryEvent<'sourceStarted'>): void {
    this.log.info(e, 'Source started.');
  }
  pageFetched(e: TelemetryEvent<'pageFetched'>): void {
    this.log.debug(e, 'Fetched page.');
  }
  requestFailed(e: TelemetryEvent<'requestFailed'>): void {
    // A failure that is not retried halts the source, and the halt is the line worth reading.
    if (e.retryInMs === null) this.log.debug(e, 'Request failed; not retried.');
    else this.log.warn(e, 'Request failed; will retry.');
  }
  rateLimitObserved(e: TelemetryEvent<'rateLimitObserved'>): void {
    this.log.trace(e, 'Rate limit observed.');
  }
  rateLimitWait(e: TelemetryEvent<'rateLimitWait'>): void {
    if (e.waitMs >= 1000) this.log.info(e, 'Waiting for rate-limit budget.');
  }
  eventsDropped(e: TelemetryEvent<'eventsDropped'>): void {
    this.log.debug(e, 'Events dropped by the collection script.');
  }
  batchDelivered(e: TelemetryEvent<'batchDelivered'>): void {
    this.log.debug(e, 'Delivered batch.');
  }
  sinkRetry(e: TelemetryEvent<'sinkRetry'>): void {
    this.log.warn(e, 'Sink write failed; will retry.');
  }
  checkpointCommitted(e: TelemetryEvent<'checkpointCommitted'>): void {
    this.log.trace(e, 'Committed checkpoint.');
  }
  cycleFinished(e: TelemetryEvent<'cycleFinished'>): void {
    const lagSecs = e.newestPublished === null ? null : (Date.now() - Date.parse(e.newestPublished)) / 1000;
    this.log.info({ ...e, lag_secs: lagSecs }, 'Cycle finished.');
  }
  scriptError(e: TelemetryEvent<'scriptError'>): void {
    this.log.error(e, 'Collection script failed; the cycle will be retried.');
  }
  sourceHalted(e: TelemetryEvent<'sourceHalted'>): void {
    this.log.error(e, 'Source halted.');
  }
}

/** Forwards every happening to several sinks in order, so the pipeline keeps calling one. */
export class TeeTelemetry implements TelemetrySink {
  readonly #sinks: readonly TelemetrySink[];

  constructor(sinks: readonly TelemetrySink[]) {
    this.#sinks = sinks;
  }

  sourceStarted(e: TelemetryEvent<'sourceStarted'>): void {
    for (const s of this.#sinks) s.sourceStarted(e);
  }
  pageFetched(e: TelemetryEvent<'pageFetched'>): void {
    for (const s of this.#sinks) s.pageFetched(e);
  }
  requestFailed(e: TelemetryEvent<'requestFailed'>): void {
    for (const s of this.#sinks) s.requestFailed(e);
  }
  rateLimitObserved(e: TelemetryEvent<'rateLimitObserved'>): void {
    for (const s of this.#sinks) s.rateLimitObserved(e);
  }
  rateLimitWait(e: TelemetryEvent<'rateLimitWait'>): void {
    for (const s of this.#sinks) s.rateLimitWait(e);
  }
  eventsDropped(e: TelemetryEvent<'eventsDropped'>): void {
    for (const s of this.#sinks) s.eventsDropped(e);
  }
  batchDelivered(e: TelemetryEvent<'batchDelivered'>): void {
    for (const s of this.#sinks) s.batchDelivered(e);
  }
  sinkRetry(e: TelemetryEvent<'sinkRetry'>): void {
    for (const s of this.#sinks) s.sinkRetry(e);
  }
  checkpointCommitted(e: TelemetryEvent<'checkpointCommitted'>): void {
    for (const s of this.#sinks) s.checkpointCommitted(e);
  }
  cycleFinished(e: TelemetryEvent<'cycleFinished'>): void {
    for (const s of this.#sinks) s.cycleFinished(e);
  }
  scriptError(e: TelemetryEvent<'scriptError'>): void {
    for (const s of this.#sinks) s.scriptError(e);
  }
  sourceHalted(e: TelemetryEvent<'sourceHalted'>): void {
    for (const s of this.#sinks) s.sourceHalted(e);
  }
}
