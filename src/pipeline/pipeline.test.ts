import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CollectionLogic } from '../core/collection-logic.js';
import { OktailError } from '../core/errors.js';
import type { JsonObject } from '../core/json.js';
import { batchFromNdjson } from '../core/event-batch.js';
import type { CheckpointStore, SourceCheckpoint } from '../core/checkpoint.js';
import type { EventBatch, Sink, SinkCheckpoint, WriteResult } from '../core/sink.js';
import type { SourcePage } from '../sources/okta/source.js';
import { silentLogger } from '../telemetry/logger.js';
import { LogTelemetry } from '../telemetry/telemetry.js';
import { FileCheckpointStore } from './checkpoint-file.js';
import { Pipeline, type PipelineSource } from './pipeline.js';

/** In-memory sink for unit tests: scripted answers, records what it accepted. */
class MemorySink implements Sink {
  kind: 'positional' | 'acknowledged' = 'positional';
  readonly accepted: string[] = [];
  writes = 0;
  constructor(
    readonly name: string,
    readonly inputs: string[],
    private readonly answers: WriteResult['kind'][] = [],
  ) {}
  async open(): Promise<void> {}
  async write(batch: EventBatch): Promise<WriteResult> {
    const answer = this.answers[this.writes++] ?? 'ok';
    if (answer === 'ok') {
      this.accepted.push(batch.data.toString());
      return { kind: 'ok' };
    }
    const error = new Error(`${answer} #${this.writes}`);
    return answer === 'retry' ? { kind: 'retry', error, afterMs: 1 } : { kind: 'fatal', error };
  }
  checkpoint(): SinkCheckpoint {
    return { accepted: this.accepted.length };
  }
  async close(): Promise<void> {}
}

const logic: CollectionLogic = {
  name: 'test logic',
  tags: {},
  initialState: async ({ startFrom, now }) => ({ since: startFrom ?? now }),
  cycleRequest: async () => '/x',
  afterPage: async (state) => ({ state, next: null }),
  close: async () => {},
};

function page(n: number, events = 1): SourcePage {
  return {
    batch: batchFromNdjson('okta', 'acme.okta.com', Buffer.from(events > 0 ? `{"n":${n}}\n` : '')),
    state: { next: `cursor-${n}` },
    newestPublished: null,
  };
}

function source(name: string, pages: (SourcePage | Error)[], seen: JsonObject[] = []): PipelineSource {
  return {
    name,
    domain: 'acme.okta.com',
    logic,
    intervalMs: 10,
    startFrom: '2026-01-01T00:00:00.000Z',
    source: {
      async *cycle(state: JsonObject) {
        seen.push(state);
        for (const p of pages) {
          if (p instanceof Error) throw p;
          yield { ...p, batch: { ...p.batch, source: name } };
        }
      },
    },
  };
}

async function setup(sources: PipelineSource[], sinks: Sink[]) {
  const dir = await mkdtemp(join(tmpdir(), 'oktail-pipe-'));
  const store = new FileCheckpointStore(dir);
  const log = silentLogger();
  const pipeline = new Pipeline({
    sources,
    sinks,
    store,
    log,
    telemetry: new LogTelemetry(log),
    once: true,
    sinkRetryMs: 1,
  });
  return { pipeline, store };
}

const run = (p: Pipeline) => p.run(new AbortController().signal);

describe('Pipeline', () => {
  it('commits the starting state before the first request, so a crash cannot move "now"', async () => {
    const seen: JsonObject[] = [];
    const { pipeline, store } = await setup([source('okta', [], seen)], [new MemorySink('a', ['okta'])]);
    await run(pipeline);
    expect(seen[0]).toEqual({ since: '2026-01-01T00:00:00.000Z' });
    expect((await store.load()).sources.okta?.state).toEqual({ since: '2026-01-01T00:00:00.000Z' });
  });

  it('commits a page with every sink position after all sinks acknowledged it', async () => {
    const a = new MemorySink('a', ['okta']);
    const b = new MemorySink('b', ['okta']);
    const { pipeline, store } = await setup([source('okta', [page(1), page(2)])], [a, b]);
    expect(await run(pipeline)).toEqual([{ source: 'okta', status: 'completed' }]);
    const cp = await store.load();
    expect(cp.sources.okta?.state).toEqual({ next: 'cursor-2' });
    expect(cp.sinks).toEqual({ a: { accepted: 2 }, b: { accepted: 2 } });
  });

  it('retries only the sink that asked for a retry', async () => {
    const a = new MemorySink('a', ['okta']);
    const b = new MemorySink('b', ['okta'], ['retry', 'retry', 'ok']);
    const { pipeline, store } = await setup([source('okta', [page(1)])], [a, b]);
    await run(pipeline);
    expect(a.accepted).toEqual(['{"n":1}\n']);
    expect(b.accepted).toEqual(['{"n":1}\n']);
    expect(b.writes).toBe(3);
    expect((await store.load()).sources.okta?.state).toEqual({ next: 'cursor-1' });
  });

  it('halts without committing a page a sink refused for good', async () => {
    const a = new MemorySink('a', ['okta']);
    const b = new MemorySink('b', ['okta'], ['ok', 'fatal']);
    const { pipeline, store } = await setup([source('okta', [page(1), page(2)])], [a, b]);
    const [outcome] = await run(pipeline);
    expect(outcome).toMatchObject({ status: 'halted', error: { code: 'SINK_WRITE_FAILED' } });
    const cp = await store.load();
    expect(cp.sources.okta?.state).toEqual({ next: 'cursor-1' });
    expect(cp.sinks.a).toEqual({ accepted: 1 });
  });

  it('commits nothing more after a page reached only some sinks', async () => {
    // Sink a holds page 2 of "first" uncommitted; a later commit by "second" would record a's position
    // past it and duplicate it after restart.
    const a = new MemorySink('a', ['first', 'second']);
    const b = new MemorySink('b', ['first'], ['ok', 'fatal']);
    const first = source('first', [page(1), page(2)]);
    const slowSecond = source('second', [page(3)]);
    const inner = slowSecond.source;
    slowSecond.source = {
      async *cycle(state, signal) {
        // Starts once b refused page 2 of "first", whatever the machine's speed.
        while (b.writes < 2) await new Promise((r) => setTimeout(r, 5));
        yield* inner.cycle(state, signal);
      },
    };
    const { pipeline, store } = await setup([first, slowSecond], [a, b]);
    const outcomes = await run(pipeline);
    expect(outcomes.map((o) => o.status)).toEqual(['halted', 'halted']);
    const cp = await store.load();
    expect(cp.sinks.a).toEqual({ accepted: 1 });
    expect(cp.sources.second?.state).toEqual({ since: '2026-01-01T00:00:00.000Z' });
  });

  it('does not commit an empty page that leaves the state unchanged', async () => {
    const sink = new MemorySink('a', ['okta']);
    const empty: SourcePage = { ...page(1, 0), state: { since: '2026-01-01T00:00:00.000Z' } };
    const { pipeline, store } = await setup([source('okta', [empty])], [sink]);
    await run(pipeline);
    expect(sink.writes).toBe(0);
    expect((await store.load()).sources.okta?.state).toEqual({ since: '2026-01-01T00:00:00.000Z' });
  });

  it('reports a failed cycle when the script errs in a single run', async () => {
    const err = new OktailError('SCRIPT_ERROR', 'x.lua: after_page failed at line 3: boom', true);
    const { pipeline } = await setup([source('okta', [err])], [new MemorySink('a', ['okta'])]);
    expect(await run(pipeline)).toEqual([{ source: 'okta', status: 'failed', error: err }]);
  });

  it('halts on a bad request', async () => {
    const err = new OktailError('OKTA_BAD_REQUEST', 'Bad request - check API parameters', false);
    const { pipeline } = await setup([source('okta', [err])], [new MemorySink('a', ['okta'])]);
    expect(await run(pipeline)).toEqual([{ source: 'okta', status: 'halted', error: err }]);
  });

  it('does not resume a state committed for another org', async () => {
    const seen: JsonObject[] = [];
    const { pipeline, store } = await setup([source('okta', [], seen)], [new MemorySink('a', ['okta'])]);
    await store.commit({
      version: 1,
      sources: {
        okta: { domain: 'other.okta.com', state: { next: 'https://other.okta.com/x' }, committed_at: 'x' },
      },
      sinks: {},
    });
    await run(pipeline);
    expect(seen[0]).toEqual({ since: '2026-01-01T00:00:00.000Z' });
  });

  it('retries a cycle the script failed at the next interval when running continuously', async () => {
    const seen: JsonObject[] = [];
    let cycles = 0;
    const controller = new AbortController();
    const flaky: PipelineSource = {
      ...source('okta', []),
      source: {
        async *cycle(state: JsonObject) {
          seen.push(state);
          cycles++;
          if (cycles === 1)
            throw new OktailError('SCRIPT_ERROR', 'x.lua: after_page failed at line 3: boom', true);
          yield page(1);
          controller.abort();
        },
      },
    };
    const sink = new MemorySink('a', ['okta']);
    const dir = await mkdtemp(join(tmpdir(), 'oktail-pipe-'));
    const log = silentLogger();
    const store = new FileCheckpointStore(dir);
    const pipeline = new Pipeline({
      sources: [flaky],
      sinks: [sink],
      store,
      log,
      telemetry: new LogTelemetry(log),
    });
    expect(await pipeline.run(controller.signal)).toEqual([{ source: 'okta', status: 'stopped' }]);
    expect(seen).toEqual([{ since: '2026-01-01T00:00:00.000Z' }, { since: '2026-01-01T00:00:00.000Z' }]);
    expect(sink.accepted).toEqual(['{"n":1}\n']);
    expect((await store.load()).sources.okta?.state).toEqual({ next: 'cursor-1' });
  });

  it('lets a source whose acknowledged sink is stuck hold back only itself', async () => {
    let release!: () => void;
    const stuck = new (class extends MemorySink {
      override async write(batch: EventBatch): Promise<WriteResult> {
        await new Promise<void>((r) => (release = r));
        return super.write(batch);
      }
    })('net', ['slow']);
    stuck.kind = 'acknowledged';
    const file = new MemorySink('file', ['slow', 'fast']);
    const fastPages = [page(10), page(11), page(12)];
    const { pipeline, store } = await setup(
      [source('slow', [page(1)]), source('fast', fastPages)],
      [stuck, file],
    );
    const done = run(pipeline);
    // The fast source commits all its pages while the slow one waits for its destination.
    for (let i = 0; i < 500; i++) {
      const cp = await store.load();
      if (cp.sources.fast?.state?.next === 'cursor-12') break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const before = await store.load();
    expect(before.sources.fast?.state).toEqual({ next: 'cursor-12' });
    expect(before.sources.slow?.state).toEqual({ since: '2026-01-01T00:00:00.000Z' });
    expect(file.accepted).toHaveLength(3);
    release();
    expect((await done).map((o) => o.status)).toEqual(['completed', 'completed']);
    const after = await store.load();
    expect(after.sources.slow?.state).toEqual({ next: 'cursor-1' });
    // The file got the slow source's page only after its acknowledged sink accepted it.
    expect(file.accepted).toHaveLength(4);
  });

  it('halts the sources feeding an acknowledged sink that failed for good; others keep going', async () => {
    const net = new MemorySink('net', ['a'], ['fatal']);
    net.kind = 'acknowledged';
    const file = new MemorySink('file', ['a', 'b']);
    const { pipeline, store } = await setup([source('a', [page(1)]), source('b', [page(2)])], [net, file]);
    const outcomes = await run(pipeline);
    expect(outcomes.map((o) => o.status)).toEqual(['halted', 'completed']);
    expect(outcomes[0]?.error?.message).toContain('net');
    const cp = await store.load();
    expect(cp.sources.a?.state).toEqual({ since: '2026-01-01T00:00:00.000Z' });
    expect(cp.sources.b?.state).toEqual({ next: 'cursor-2' });
    // The page of a reached no positional sink: nothing to roll back, later commits stay allowed.
    expect(file.accepted).toEqual(['{"n":2}\n']);
  });

  it('on shutdown lets the page being delivered reach its acknowledged sink and commits it', async () => {
    const controller = new AbortController();
    let release!: () => void;
    const slow = new (class extends MemorySink {
      override async write(batch: EventBatch): Promise<WriteResult> {
        await new Promise<void>((r) => (release = r));
        return super.write(batch);
      }
    })('net', ['okta']);
    slow.kind = 'acknowledged';
    const dir = await mkdtemp(join(tmpdir(), 'oktail-pipe-'));
    const log = silentLogger();
    const store = new FileCheckpointStore(dir);
    const pipeline = new Pipeline({
      sources: [source('okta', [page(1), page(2)])],
      sinks: [slow],
      store,
      log,
      telemetry: new LogTelemetry(log),
      drainMs: 60_000,
    });
    const done = pipeline.run(controller.signal);
    while (release === undefined) await new Promise((r) => setTimeout(r, 5));
    controller.abort(new Error('SIGTERM'));
    release();
    expect(await done).toEqual([{ source: 'okta', status: 'stopped' }]);
    expect(slow.accepted).toEqual(['{"n":1}\n']);
    expect((await store.load()).sources.okta?.state).toEqual({ next: 'cursor-1' });
  });

  describe('sources added and removed while running', () => {
    /** A source that serves `pages` once, then nothing, every 10 ms. */
    function live(name: string, pages: SourcePage[]): PipelineSource {
      const src = source(name, []);
      let served = false;
      src.source = {
        async *cycle() {
          if (served) return;
          served = true;
          for (const p of pages) yield { ...p, batch: { ...p.batch, source: name } };
        },
      };
      return src;
    }

    async function waitFor(check: () => Promise<boolean> | boolean): Promise<void> {
      for (let i = 0; i < 1000 && !(await check()); i++) await new Promise((r) => setTimeout(r, 5));
      expect(await check()).toBe(true);
    }

    async function continuous(sources: PipelineSource[], sinks: Sink[]) {
      const dir = await mkdtemp(join(tmpdir(), 'oktail-pipe-'));
      const store = new FileCheckpointStore(dir);
      const log = silentLogger();
      const controller = new AbortController();
      const pipeline = new Pipeline({
        sources,
        sinks,
        store,
        log,
        telemetry: new LogTelemetry(log),
        sinkRetryMs: 1,
        keepAlive: true,
        drainMs: 60_000,
      });
      const done = pipeline.run(controller.signal);
      return { pipeline, store, controller, done };
    }

    it('keeps running with no source, collects one added later, and forgets it on removal', async () => {
      const sink = new MemorySink('a', ['okta']);
      const { pipeline, store, controller, done } = await continuous([], [sink]);
      await pipeline.addSource(live('okta', [page(1), page(2)]));
      expect(pipeline.sourceNames()).toEqual(['okta']);
      await waitFor(async () => (await store.load()).sources.okta?.state?.next === 'cursor-2');
      expect(sink.accepted).toEqual(['{"n":1}\n', '{"n":2}\n']);
      await expect(pipeline.addSource(live('okta', []))).rejects.toThrow(/already running/);
      expect(await pipeline.removeSource('okta', { forget: true })).toEqual({
        source: 'okta',
        status: 'stopped',
      });
      expect(pipeline.sourceNames()).toEqual([]);
      expect((await store.load()).sources.okta).toBeUndefined();
      controller.abort(new Error('SIGTERM'));
      // A removed source's outcome went to removeSource's caller.
      expect(await done).toEqual([]);
    });

    it('resumes a removed source from its checkpoint when it is added again', async () => {
      const sink = new MemorySink('a', ['okta']);
      const seen: JsonObject[] = [];
      const { pipeline, store, controller, done } = await continuous([live('okta', [page(1)])], [sink]);
      await waitFor(async () => (await store.load()).sources.okta?.state?.next === 'cursor-1');
      await pipeline.removeSource('okta');
      expect((await store.load()).sources.okta?.state).toEqual({ next: 'cursor-1' });
      await pipeline.addSource(source('okta', [], seen), ['a']);
      await waitFor(() => seen.length > 0);
      expect(seen[0]).toEqual({ next: 'cursor-1' });
      controller.abort(new Error('SIGTERM'));
      expect((await done).map((o) => o.status)).toEqual(['stopped']);
    });

    it('finishes and commits the page in delivery of a removed source; the others keep going', async () => {
      let release!: () => void;
      const slow = new (class extends MemorySink {
        override async write(batch: EventBatch): Promise<WriteResult> {
          if (batch.source === 'slow') await new Promise<void>((r) => (release = r));
          return super.write(batch);
        }
      })('net', ['slow', 'fast']);
      slow.kind = 'acknowledged';
      const { pipeline, store, controller, done } = await continuous(
        [live('slow', [page(1), page(2)]), live('fast', [page(10)])],
        [slow],
      );
      await waitFor(() => release !== undefined);
      const removed = pipeline.removeSource('slow');
      await waitFor(async () => (await store.load()).sources.fast?.state?.next === 'cursor-10');
      release();
      expect(await removed).toEqual({ source: 'slow', status: 'stopped' });
      // The page being delivered was committed; the next one was never fetched.
      expect((await store.load()).sources.slow?.state).toEqual({ next: 'cursor-1' });
      expect(slow.accepted).toEqual(['{"n":10}\n', '{"n":1}\n']);
      controller.abort(new Error('SIGTERM'));
      expect(await done).toEqual([{ source: 'fast', status: 'stopped' }]);
    });

    it('refuses to route a source to an unknown sink', async () => {
      const { pipeline, controller, done } = await continuous([], [new MemorySink('a', [])]);
      await expect(pipeline.addSource(live('x', []), ['nope'])).rejects.toThrow(/unknown sinks nope/);
      controller.abort(new Error('SIGTERM'));
      expect(await done).toEqual([]);
    });
  });

  describe('with a holding sink (pages delivered as one unit, committed after it)', () => {
    /** Holds pages per source up to `maxEvents`; a flush delivers them as one unit. */
    class HoldingSink implements Sink {
      readonly kind = 'acknowledged' as const;
      readonly units: string[][] = [];
      flushes = 0;
      readonly #held = new Map<string, { pages: string[]; since: number }>();
      constructor(
        readonly name: string,
        readonly inputs: string[],
        readonly maxEvents: number,
        readonly holdMs = 60_000,
        private readonly flushAnswers: WriteResult['kind'][] = [],
      ) {}
      readonly holds = {
        fits: (batch: EventBatch) => {
          const held = this.#held.get(batch.source);
          return !held || held.pages.length + batch.count <= this.maxEvents;
        },
        dueAt: (source: string) => {
          const held = this.#held.get(source);
          if (!held) return undefined;
          return held.pages.length >= this.maxEvents ? -Infinity : held.since + this.holdMs;
        },
        flush: async (source: string): Promise<WriteResult> => {
          const answer = this.flushAnswers[this.flushes++] ?? 'ok';
          if (answer === 'retry') return { kind: 'retry', error: new Error('busy'), afterMs: 1 };
          if (answer === 'fatal') return { kind: 'fatal', error: new Error('denied') };
          const held = this.#held.get(source);
          if (held) this.units.push(held.pages);
          this.#held.delete(source);
          return { kind: 'ok' };
        },
        drop: (source: string) => void this.#held.delete(source),
      };
      async open(): Promise<void> {}
      async write(batch: EventBatch): Promise<WriteResult> {
        const held = this.#held.get(batch.source) ?? { pages: [], since: performance.now() };
        this.#held.set(batch.source, held);
        // A copy: the page's bytes are reused once the next page is fetched.
        for (let i = 0; i < batch.count; i++) {
          held.pages.push(batch.data.subarray(batch.starts[i], batch.ends[i]).toString());
        }
        return { kind: 'held' };
      }
      checkpoint(): undefined {
        return undefined;
      }
      async close(): Promise<void> {}
    }

    /** Pages of one event each over one reused buffer, as the Okta source's read-ahead buffers are. */
    function reusingSource(name: string, from: number, to: number, seen: JsonObject[] = []): PipelineSource {
      const src = source(name, []);
      const buffer = Buffer.alloc(8);
      let next = from;
      src.source = {
        async *cycle(state) {
          seen.push(state);
          for (; next <= to; next++) {
            buffer.write(`{"n":${next}}\n`);
            yield {
              batch: batchFromNdjson(name, 'acme.okta.com', buffer),
              state: { next: `cursor-${next}` },
              newestPublished: null,
            };
          }
        },
      };
      return src;
    }

    /** A store that records the source state of every commit. */
    async function recordingStore() {
      const store = new FileCheckpointStore(await mkdtemp(join(tmpdir(), 'oktail-pipe-')));
      const commits: unknown[] = [];
      const commit = store.commit.bind(store);
      store.commit = async (cp) => {
        commits.push(cp.sources.okta?.state);
        await commit(cp);
      };
      return { store, commits };
    }

    function pipelineWith(
      sources: PipelineSource[],
      sinks: Sink[],
      store: FileCheckpointStore,
      once = true,
      drainMs = 60_000,
    ) {
      const log = silentLogger();
      return new Pipeline({
        sources,
        sinks,
        store,
        log,
        telemetry: new LogTelemetry(log),
        once,
        sinkRetryMs: 1,
        drainMs,
      });
    }

    it('commits only after a unit is delivered, and never inside one', async () => {
      const lake = new HoldingSink('lake', ['okta'], 3);
      const { store, commits } = await recordingStore();
      const pipeline = pipelineWith([reusingSource('okta', 1, 7)], [lake], store);
      expect(await run(pipeline)).toEqual([{ source: 'okta', status: 'completed' }]);
      // Full at 3 events; the last unit is delivered at the end of the --once cycle.
      expect(lake.units).toEqual([
        ['{"n":1}', '{"n":2}', '{"n":3}'],
        ['{"n":4}', '{"n":5}', '{"n":6}'],
        ['{"n":7}'],
      ]);
      expect(commits.slice(1)).toEqual([{ next: 'cursor-3' }, { next: 'cursor-6' }, { next: 'cursor-7' }]);
    });

    it('delivers what it holds before a page that would not fit, and commits right after', async () => {
      const lake = new HoldingSink('lake', ['okta'], 3);
      const { store, commits } = await recordingStore();
      const pages = [
        page(1, 1),
        page(2, 1),
        { ...page(3), batch: batchFromNdjson('okta', 'x', Buffer.from('{"n":3}\n{"n":4}\n')) },
      ];
      const pipeline = pipelineWith([source('okta', pages)], [lake], store);
      await run(pipeline);
      expect(lake.units).toEqual([
        ['{"n":1}', '{"n":2}'],
        ['{"n":3}', '{"n":4}'],
      ]);
      expect(commits.slice(1)).toEqual([{ next: 'cursor-2' }, { next: 'cursor-3' }]);
    });

    it("writes a file sink sharing the source at the unit's commit, from copies of the pages", async () => {
      const lake = new HoldingSink('lake', ['okta'], 3);
      const archive = new MemorySink('archive', ['okta']);
      const { store, commits } = await recordingStore();
      const pipeline = pipelineWith([reusingSource('okta', 1, 4)], [lake, archive], store);
      await run(pipeline);
      expect(archive.accepted).toEqual(['{"n":1}\n', '{"n":2}\n', '{"n":3}\n', '{"n":4}\n']);
      expect(commits.slice(1)).toEqual([{ next: 'cursor-3' }, { next: 'cursor-4' }]);
      expect((await store.load()).sinks.archive).toEqual({ accepted: 4 });
    });

    it('retries a flush, and halts without committing the unit when the sink refuses it for good', async () => {
      const retried = new HoldingSink('lake', ['okta'], 2, 60_000, ['retry', 'ok']);
      const { store } = await recordingStore();
      await run(pipelineWith([reusingSource('okta', 1, 2)], [retried], store));
      expect(retried.flushes).toBe(2);
      expect((await store.load()).sources.okta?.state).toEqual({ next: 'cursor-2' });

      const refused = new HoldingSink('lake', ['okta'], 2, 60_000, ['ok', 'fatal']);
      const second = await recordingStore();
      const [outcome] = await run(pipelineWith([reusingSource('okta', 1, 4)], [refused], second.store));
      expect(outcome).toMatchObject({ status: 'halted', error: { code: 'SINK_WRITE_FAILED' } });
      expect((await second.store.load()).sources.okta?.state).toEqual({ next: 'cursor-2' });
    });

    it('delivers held pages once they are due while idle, and the next cycle goes on after them', async () => {
      const lake = new HoldingSink('lake', ['okta'], 100, 50);
      const { store, commits } = await recordingStore();
      const seen: JsonObject[] = [];
      const src = reusingSource('okta', 1, 2, seen);
      src.intervalMs = 20;
      const controller = new AbortController();
      const pipeline = pipelineWith([src], [lake], store, false);
      const done = pipeline.run(controller.signal);
      for (let i = 0; i < 2000 && lake.units.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      controller.abort(new Error('SIGTERM'));
      expect(await done).toEqual([{ source: 'okta', status: 'stopped' }]);
      expect(lake.units).toEqual([['{"n":1}', '{"n":2}']]);
      expect(commits.slice(1)).toEqual([{ next: 'cursor-2' }]);
      // Cycles between the pages' delivery and the flush started after the held pages, not from the start.
      expect(seen.slice(1).every((s) => isDeepStrictEqual(s, { next: 'cursor-2' }))).toBe(true);
      expect(seen.length).toBeGreaterThan(1);
    });

    it('delivers and commits what it holds on shutdown', async () => {
      const lake = new HoldingSink('lake', ['okta'], 100);
      const { store, commits } = await recordingStore();
      const controller = new AbortController();
      const pipeline = pipelineWith([reusingSource('okta', 1, 3)], [lake], store, false);
      const done = pipeline.run(controller.signal);
      for (let i = 0; i < 2000 && commits.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 50));
      expect(commits).toHaveLength(1);
      controller.abort(new Error('SIGTERM'));
      await done;
      expect(lake.units).toEqual([['{"n":1}', '{"n":2}', '{"n":3}']]);
      expect(commits.slice(1)).toEqual([{ next: 'cursor-3' }]);
    });

    it("with a per-source store, writes the held pages inside the unit's commit, from copies", async () => {
      const lake = new HoldingSink('lake', ['okta'], 3);
      // A postgres sink in the store's own database: its rows go into the commit transaction.
      const db = new MemorySink('db', ['okta']);
      db.kind = 'acknowledged';
      const inserted: string[] = [];
      const commits: { state: unknown; rows: string[] }[] = [];
      const sourcesCommitted: Record<string, SourceCheckpoint> = {};
      const store: CheckpointStore = {
        load: async () => ({ version: 1, sources: {}, sinks: {} }),
        commit: async () => {
          throw new Error('a per-source store is never committed whole');
        },
        loadSource: async (name) => sourcesCommitted[name],
        commitSource: async (name, entry, writes = []) => {
          const rows = inserted.length;
          for (const write of writes) await write({ query: async () => undefined });
          commits.push({ state: entry?.state, rows: inserted.slice(rows) });
          if (entry) sourcesCommitted[name] = entry;
        },
        transactionalWrite: (sink, batch) =>
          sink === db
            ? async () => {
                inserted.push(batch.data.toString().trimEnd());
              }
            : undefined,
      };
      const log = silentLogger();
      const pipeline = new Pipeline({
        sources: [reusingSource('okta', 1, 4)],
        sinks: [lake, db],
        store,
        log,
        telemetry: new LogTelemetry(log),
        once: true,
        sinkRetryMs: 1,
      });
      await run(pipeline);
      expect(db.writes).toBe(0);
      expect(lake.units).toEqual([['{"n":1}', '{"n":2}', '{"n":3}'], ['{"n":4}']]);
      expect(commits.slice(1)).toEqual([
        { state: { next: 'cursor-3' }, rows: ['{"n":1}', '{"n":2}', '{"n":3}'] },
        { state: { next: 'cursor-4' }, rows: ['{"n":4}'] },
      ]);
    });
  });
});
