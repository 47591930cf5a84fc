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
  /** A network sink's request was accepted by the destination (its accepted part, for a partial answer). */
  sinkRequestSent(e: { sink: string; type: string; events: number; bytes: number; ms: number }): void;
  /**
   * A network sink's request failed. `kind`: 'retryable' (retried after `retryInMs`), 'permanent'
   * (halts), 'split' (too large: halved and resent). Logged once per failure streak (`firstOfStreak`).
   */
  sinkRequestFailed(e: {
    sink: string;
    type: string;
    kind: 'retryable' | 'permanent' | 'split';
    /** Short machine-readable reason, e.g. `http_503`, `timeout`, `network`. A metric label. */
    reason: string;
    error: string;
    events: number;
    ms: number;
    retryInMs: number | null;
    firstOfStreak: boolean;
  }): void;
  /** A network sink delivered again after a failure streak. */
  sinkRecovered(e: { sink: string; type: string; attempts: number; ms: number }): void;
  sinkInFlight(e: { sink: string; type: string; requests: number }): void;
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
  sinkRequestSent(e: TelemetryEvent<'sinkRequestSent'>): void {
    this.log.trace(e, 'Sink request accepted.');
  }
  sinkRequestFailed(e: TelemetryEvent<'sinkRequestFailed'>): void {
    // One line per failure streak, not one per attempt: a destination down for an hour is one warning.
    if (e.kind === 'permanent') this.log.error(e, 'Sink request failed permanently.');
    else if (e.kind === 'split') this.log.info(e, 'Sink request too large; splitting it.');
    else if (e.firstOfStreak)
      this.log.warn(e, 'Sink request failed; retrying until the destination accepts.');
    else this.log.debug(e, 'Sink request failed again; will retry.');
  }
  sinkRecovered(e: TelemetryEvent<'sinkRecovered'>): void {
    this.log.info(e, 'Sink delivers again.');
  }
  sinkInFlight(_e: TelemetryEvent<'sinkInFlight'>): void {}
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
  sinkRequestSent(e: TelemetryEvent<'sinkRequestSent'>): void {
    for (const s of this.#sinks) s.sinkRequestSent(e);
  }
  sinkRequestFailed(e: TelemetryEvent<'sinkRequestFailed'>): void {
    for (const s of this.#sinks) s.sinkRequestFailed(e);
  }
  sinkRecovered(e: TelemetryEvent<'sinkRecovered'>): void {
    for (const s of this.#sinks) s.sinkRecovered(e);
  }
  sinkInFlight(e: TelemetryEvent<'sinkInFlight'>): void {
    for (const s of this.#sinks) s.sinkInFlight(e);
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
