import type { JsonObject } from './json.js';

/** One page worth of tagged events, already serialised as NDJSON (every line ends with "\n"). */
export interface Batch {
  readonly source: string;
  readonly events: number;
  readonly ndjson: Buffer;
}

/** Results are data: the pipeline branches on them (retry only the sinks that failed, halt on fatal). */
export type WriteResult =
  { kind: 'ok' } | { kind: 'retry'; afterMs?: number; error: Error } | { kind: 'fatal'; error: Error };

/** What a checkpoint records for a sink so that a restart can undo writes the checkpoint did not cover. */
export type SinkCheckpoint = JsonObject;

/**
 * A destination for events. The pipeline calls `write` for one batch at a time per sink and commits a
 * checkpoint only after every sink of the batch's source answered `ok`.
 */
export interface Sink {
  readonly name: string;
  /** Source names this sink receives from. */
  readonly inputs: readonly string[];
  /** `exactly-once` sinks can roll back to `committed` on open; `at-least-once` ones may repeat a batch. */
  readonly guarantee: 'exactly-once' | 'at-least-once';
  /** Opens the sink. `committed` is what the last durable checkpoint recorded for it, if anything. */
  open(committed: SinkCheckpoint | undefined): Promise<void>;
  /**
   * Delivers a batch. `ok` means durable (it survives a crash of this process). On `retry` or `fatal`
   * the sink has left no part of the batch behind where it can undo it.
   */
  write(batch: Batch): Promise<WriteResult>;
  /** The sink's position to record in the next checkpoint (undefined if it has none). */
  checkpoint(): SinkCheckpoint | undefined;
  /** Flushes and releases resources. Calling it twice is fine. */
  close(): Promise<void>;
}
