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
    retryInMs: number;
  }): void;
  rateLimitObserved(e: { source: string; limit: number; remaining: number; resetInMs: number }): void;
  rateLimitWait(e: { source: string; waitMs: number; reason: string }): void;
  eventsDropped(e: { source: string; events: number; reason: string }): void;
  batchDelivered(e: { source: string; events: number; bytes: number; sinks: string[] }): void;
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

/** Log-only implementation; metrics wrap or extend it. */
export class LogTelemetry implements TelemetrySink {
  constructor(protected readonly log: Logger) {}

  sourceStarted(e: Parameters<TelemetrySink['sourceStarted']>[0]): void {
    this.log.info(e, 'Source started.');
  }
  pageFetched(e: Parameters<TelemetrySink['pageFetched']>[0]): void {
    this.log.debug(e, 'Fetched page.');
  }
  requestFailed(e: Parameters<TelemetrySink['requestFailed']>[0]): void {
    this.log.warn(e, 'Request failed; will retry.');
  }
  rateLimitObserved(e: Parameters<TelemetrySink['rateLimitObserved']>[0]): void {
    this.log.trace(e, 'Rate limit observed.');
  }
  rateLimitWait(e: Parameters<TelemetrySink['rateLimitWait']>[0]): void {
    if (e.waitMs >= 1000) this.log.info(e, 'Waiting for rate-limit budget.');
  }
  eventsDropped(e: Parameters<TelemetrySink['eventsDropped']>[0]): void {
    this.log.debug(e, 'Events dropped by the collection script.');
  }
  batchDelivered(e: Parameters<TelemetrySink['batchDelivered']>[0]): void {
    this.log.debug(e, 'Delivered batch.');
  }
  sinkRetry(e: Parameters<TelemetrySink['sinkRetry']>[0]): void {
    this.log.warn(e, 'Sink write failed; will retry.');
  }
  checkpointCommitted(e: Parameters<TelemetrySink['checkpointCommitted']>[0]): void {
    this.log.trace(e, 'Committed checkpoint.');
  }
  cycleFinished(e: Parameters<TelemetrySink['cycleFinished']>[0]): void {
    const lagSecs = e.newestPublished === null ? null : (Date.now() - Date.parse(e.newestPublished)) / 1000;
    this.log.info({ ...e, lag_secs: lagSecs }, 'Cycle finished.');
  }
  scriptError(e: Parameters<TelemetrySink['scriptError']>[0]): void {
    this.log.error(e, 'Collection script failed; the cycle will be retried.');
  }
  sourceHalted(e: Parameters<TelemetrySink['sourceHalted']>[0]): void {
    this.log.error(e, 'Source halted.');
  }
}
