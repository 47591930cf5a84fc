import type { StoreTransaction } from './checkpoint.js';
import type { JsonObject } from './json.js';

/** One page of tagged events, with event boundaries kept, so each sink frames events its own way. */
export interface EventBatch {
  /** The oktail source name. */
  readonly source: string;
  /** The org host (e.g. acme.okta.com), for syslog HOSTNAME etc. */
  readonly domain: string;
  readonly count: number;
  /**
   * The tagged events as NDJSON: event i is data.subarray(starts[i], ends[i]); a "\n" follows each.
   * The bytes live in the source's reused page buffer: they are valid only until the pipeline asks the
   * source for its next page, which it does once every sink answered this batch. A sink that must keep
   * events past its `write` answer (it never should: `ok` means durable) has to copy them.
   * The bytes are exactly what Okta sent with `"_okta_event_type":"systemLog"` spliced in.
   */
  readonly data: Buffer;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  /** Per-event fields read from the original bytes (null when the event lacks them). */
  readonly uuids: readonly (string | null)[];
  readonly published: readonly (string | null)[];
  readonly eventTypes: readonly (string | null)[];
  readonly severities: readonly (string | null)[];
}

/** The bytes of event i (tagged JSON, without its newline). */
export function eventBytes(batch: EventBatch, i: number): Buffer {
  return batch.data.subarray(batch.starts[i], batch.ends[i]);
}

/** Results are data: the pipeline branches on them (retry only the sinks that failed, halt on fatal). */
export type WriteResult =
  | { kind: 'ok' }
  /**
   * Only from a sink with `holds`: the page joined the pages it holds for the source, not yet delivered.
   * The pipeline does not commit past a held page until `holds.flush` answered `ok`.
   */
  | { kind: 'held' }
  /** Transient: the pipeline retries with backoff. */
  | { kind: 'retry'; afterMs?: number; error: Error }
  /** Permanent: halts the sources this sink feeds. */
  | { kind: 'fatal'; error: Error };

/** What a checkpoint records for a sink so that a restart can undo writes the checkpoint did not cover. */
export type SinkCheckpoint = JsonObject;

/** A destination for events. */
export interface Sink {
  readonly name: string;
  /** Source names this sink receives from, as configured. */
  readonly inputs: readonly string[];
  /**
   * The sources the pipeline routes to this sink now, whenever that changes (sources added or removed at
   * run time). A sink that flushes early once every input waits for its answer counts these, not `inputs`.
   */
  routed?(sources: readonly string[]): void;
  /**
   * 'positional': the sink records a position in the checkpoint and rolls back to it on open (file).
   *   The pipeline writes such sinks under the commit lock, immediately before the commit.
   * 'acknowledged': the sink's `write` resolves `ok` only once the destination durably accepted the batch
   *   (network sinks; also stdout). Written concurrently, outside the commit lock, before the positional
   *   sinks and the commit.
   */
  readonly kind: 'positional' | 'acknowledged';
  /** Opens the sink. `committed` is what the last durable checkpoint recorded for it, if anything. */
  open(committed: SinkCheckpoint | undefined, signal: AbortSignal): Promise<void>;
  /**
   * Delivers a batch. `ok` means durable. On `retry` or `fatal` a positional sink has left no part of the
   * batch behind where it can undo it.
   */
  write(batch: EventBatch, signal: AbortSignal): Promise<WriteResult>;
  /** The sink's position to record in the next checkpoint (positional sinks only). */
  checkpoint(): SinkCheckpoint | undefined;
  /** Flushes what was accepted and releases resources; idempotent. */
  close(): Promise<void>;
  /**
   * A sink that delivers several pages of a source as one unit (s3: one object). Its `write` keeps what it
   * needs of the page (a copy, or its compressed bytes: the page's own bytes are reused) and answers
   * `held`; the pipeline then fetches the next page without committing, and has the sink deliver what it
   * holds (`flush`) when a page would not fit, when the sink says the unit is due (full, or held for its
   * timeout), at the end of a `--once` cycle and on shutdown. The pipeline
   * flushes every holding sink of a source together and commits right after, so between two commits each
   * holding sink delivers at most one unit per source, and it starts at the first event after the
   * checkpoint: after a crash the replay starts a unit at the same event again.
   */
  readonly holds?: {
    /** Whether `batch` may join what is held for its source (an empty unit takes any page). */
    fits(batch: EventBatch): boolean;
    /**
     * When what is held for `source` must be delivered, in `performance.now()` time: now or earlier when
     * it is full, undefined when nothing is held.
     */
    dueAt(source: string): number | undefined;
    /** Delivers everything held for `source`; `ok` means durable (nothing held any more). */
    flush(source: string, signal: AbortSignal): Promise<WriteResult>;
    /** Forgets what is held for `source`, delivering nothing: it was not committed and is fetched again. */
    drop(source: string): void;
  };
  /**
   * A database sink that can also write a batch through another component's open transaction on the same
   * database (CheckpointStore.transactionalWrite): `url` names the database, `write` inserts the batch.
   */
  readonly transactional?: {
    readonly url: string;
    write(batch: EventBatch, tx: StoreTransaction): Promise<void>;
  };
}
