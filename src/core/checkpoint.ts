import type { JsonObject } from './json.js';
import type { SinkCheckpoint } from './sink.js';

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

/** Durable storage of the checkpoint. `commit` returns only once the new checkpoint survives a crash. */
export interface CheckpointStore {
  load(): Promise<Checkpoint>;
  commit(checkpoint: Checkpoint): Promise<void>;
}
