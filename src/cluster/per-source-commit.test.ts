import { describe, expect, it } from 'vitest';
import type {
  Checkpoint,
  CheckpointStore,
  SourceCheckpoint,
  StoreTransaction,
  TransactionalWrite,
} from '../core/checkpoint.js';
import type { CollectionLogic } from '../core/collection-logic.js';
import { OktailError } from '../core/errors.js';
import { batchFromNdjson } from '../core/event-batch.js';
import type { EventBatch, Sink, WriteResult } from '../core/sink.js';
import { Pipeline, type PipelineSource } from '../pipeline/pipeline.js';
import { silentLogger } from '../telemetry/logger.js';
import { LogTelemetry } from '../telemetry/telemetry.js';

/**
 * A store committing each source alone, as the postgres one does, with a switch that makes it refuse a
 * source (its lease lost). Transactional writes run only when the commit is accepted.
 */
class PerSourceStore implements CheckpointStore {
  readonly committed = new Map<string, SourceCheckpoint | null>();
  readonly refused = new Set<string>();
  readonly inTransaction: string[] = [];
  whole = 0;
  async load(): Promise<Checkpoint> {
    return { version: 1, sources: {}, sinks: {} };
  }
  async commit(): Promise<void> {
    this.whole++;
  }
  async loadSource(source: string): Promise<SourceCheckpoint | undefined> {
    return this.committed.get(source) ?? undefined;
  }
  async commitSource(
    source: string,
    entry: SourceCheckpoint | null,
    writes: readonly TransactionalWrite[] = [],
  ) {
    if (this.refused.has(source)) throw new OktailError('LEASE_LOST', `lost ${source}`);
    const tx: StoreTransaction = {
      query: async (sql: string) => {
        this.inTransaction.push(sql);
      },
    };
    for (const write of writes) await write(tx);
    this.committed.set(source, entry);
  }
  transactionalWrite(sink: Sink, batch: EventBatch): TransactionalWrite | undefined {
    return sink.transactional ? (tx) => sink.transactional!.write(batch, tx) : undefined;
  }
}

class RecordingSink implements Sink {
  readonly kind = 'acknowledged' as const;
  readonly inputs = ['okta'];
  readonly written: string[] = [];
  constructor(
    readonly name: string,
    transactional: boolean,
  ) {
    if (transactional) {
      this.transactional = {
        url: 'postgres://same',
        write: async (batch: EventBatch, tx: StoreTransaction) => {
          await tx.query(batch.data.toString().trim());
        },
      };
    }
  }
  readonly transactional?: Sink['transactional'];
  async open(): Promise<void> {}
  async write(batch: EventBatch): Promise<WriteResult> {
    this.written.push(batch.data.toString().trim());
    return { kind: 'ok' };
  }
  checkpoint(): undefined {
    return undefined;
  }
  async close(): Promise<void> {}
}

const logic: CollectionLogic = {
  name: 'test logic',
  tags: {},
  initialState: async () => ({ page: 0 }),
  cycleRequest: async () => '/x',
  afterPage: async (state) => ({ state, next: null }),
  close: async () => {},
};

/** A source that yields pages 1, 2, 3 ... and lets the test lose its lease after page `loseAfter`. */
function counting(store: PerSourceStore, loseAfter: number, fetched: number[]): PipelineSource {
  return {
    name: 'okta',
    domain: 'acme.okta.com',
    logic,
    intervalMs: 5,
    startFrom: null,
    source: {
      async *cycle(state) {
        for (let n = Number(state.page) + 1; ; n++) {
          fetched.push(n);
          if (n > loseAfter) store.refused.add('okta');
          yield {
            batch: batchFromNdjson('okta', 'acme.okta.com', Buffer.from(`{"n":${n}}\n`)),
            state: { page: n },
            newestPublished: null,
          };
        }
      },
    },
  };
}

describe('a pipeline on a store that commits each source alone', () => {
  it('writes the same-database sink inside the commit and stops the source once a commit is refused', async () => {
    const store = new PerSourceStore();
    const outside = new RecordingSink('http', false);
    const inside = new RecordingSink('db', true);
    const fetched: number[] = [];
    const pipeline = new Pipeline({
      sources: [],
      sinks: [outside, inside],
      store,
      telemetry: new LogTelemetry(silentLogger()),
      log: silentLogger(),
      keepAlive: true,
    });
    const stop = new AbortController();
    const run = pipeline.run(stop.signal);
    await pipeline.addSource(counting(store, 3, fetched));
    // The fourth page's commit is refused: the source stops by itself, without halting the pipeline.
    for (let i = 0; i < 500 && pipeline.sourceNames().length > 0; i++)
      await new Promise((r) => setTimeout(r, 5));
    expect(pipeline.sourceNames()).toEqual([]);
    expect(fetched).toEqual([1, 2, 3, 4]);
    expect(store.committed.get('okta')?.state).toEqual({ page: 3 });
    // The other sink got page 4 before the commit (at least once across a takeover); the transactional
    // one got exactly the committed pages.
    expect(outside.written).toEqual(['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']);
    expect(inside.written).toEqual([]);
    expect(store.inTransaction).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);
    expect(store.whole).toBe(0);
    stop.abort();
    const outcomes = await run;
    expect(outcomes).toMatchObject([{ source: 'okta', status: 'stopped', error: { code: 'LEASE_LOST' } }]);
  });

  it('resumes a source from what the store holds now, not from what it held at start-up', async () => {
    const store = new PerSourceStore();
    const fetched: number[] = [];
    const pipeline = new Pipeline({
      sources: [],
      sinks: [new RecordingSink('db', true)],
      store,
      telemetry: new LogTelemetry(silentLogger()),
      log: silentLogger(),
      keepAlive: true,
    });
    const stop = new AbortController();
    const run = pipeline.run(stop.signal);
    await new Promise((r) => setTimeout(r, 10));
    // Another replica committed page 7 meanwhile.
    store.committed.set('okta', { domain: 'acme.okta.com', state: { page: 7 }, committed_at: 'x' });
    await pipeline.addSource(counting(store, 8, fetched));
    for (let i = 0; i < 500 && pipeline.sourceNames().length > 0; i++)
      await new Promise((r) => setTimeout(r, 5));
    expect(fetched[0]).toBe(8);
    stop.abort();
    await run;
  });
});
