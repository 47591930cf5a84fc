import type { Sink } from '../../core/sink.js';
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
  void options;
  throw new Error('createNetworkSink: not implemented yet');
}
