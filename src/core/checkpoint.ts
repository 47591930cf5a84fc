import type { JsonObject } from './json.js';
import type { EventBatch, Sink, SinkCheckpoint } from './sink.js';

/** A source's durable position: the collection logic's state (the next link, last uuid/published). */
export interface SourceCheckpoint {
  /** The org the state belongs to; a state for another org is never used. */
  domain: string;
  state: JsonObject;
  /** ISO 8601 time of the commit. */
  committed_at: string;
}

/** Everything a data directory remembers. Written as one atomic file so sink offsets and cursors agree. */
export interface Checkpoint {
  version: 1;
  sources: Record<string, SourceCheckpoint>;
  sinks: Record<string, SinkCheckpoint>;
}

export function emptyCheckpoint(): Checkpoint {
  return { version: 1, sources: {}, sinks: {} };
}

/** The connection of a store's open commit transaction, as a sink writing inside it sees it. */
export interface StoreTransaction {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/** A sink's write of one batch, run by the store inside the transaction that commits the checkpoint. */
export type TransactionalWrite = (tx: StoreTransaction) => Promise<void>;

/** Durable storage of the checkpoint. `commit` returns only once the new checkpoint survives a crash. */
export interface CheckpointStore {
  load(): Promise<Checkpoint>;
  commit(checkpoint: Checkpoint): Promise<void>;
  /**
   * A store shared by several processes (state.backend: postgres) keeps each source apart: the pipeline
   * then reads a source's state afresh when it starts it, and commits each source on its own with
   * `commitSource`, never with `commit`. The store refuses (LEASE_LOST) a commit for a source this process
   * no longer owns; nothing of that commit, `writes` included, is kept. `entry` null forgets the source.
   */
  loadSource?(source: string): Promise<SourceCheckpoint | undefined>;
  commitSource?(
    source: string,
    entry: SourceCheckpoint | null,
    writes?: readonly TransactionalWrite[],
  ): Promise<void>;
  /**
   * For a sink writing to the store's own database: its write of a batch as part of the commit
   * transaction, so events and checkpoint land together (undefined: the sink is written beforehand, as
   * any other acknowledged sink).
   */
  transactionalWrite?(sink: Sink, batch: EventBatch): TransactionalWrite | undefined;
}
