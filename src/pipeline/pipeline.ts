import { isDeepStrictEqual } from 'node:util';
import type { Checkpoint, CheckpointStore } from '../core/checkpoint.js';
import type { CollectionLogic } from '../core/collection-logic.js';
import { OktailError, errorMessage, isOktailError } from '../core/errors.js';
import type { Sink } from '../core/sink.js';
import type { OktaSource, SourcePage } from '../sources/okta/source.js';
import { sleep } from '../core/async.js';
import type { Logger } from '../telemetry/logger.js';
import type { TelemetrySink } from '../telemetry/telemetry.js';

export interface PipelineSource {
  name: string;
  /** The org; a committed state for another org is never resumed. */
  domain: string;
  source: Pick<OktaSource, 'cycle'>;
  logic: CollectionLogic;
  intervalMs: number;
  startFrom: string | null;
}

export interface PipelineOptions {
  sources: PipelineSource[];
  sinks: Sink[];
  store: CheckpointStore;
  telemetry: TelemetrySink;
  log: Logger;
  /** Run one cycle per source (drain until caught up), then stop. */
  once?: boolean;
  /** Pause between sink retries; the sink may ask for longer. */
  sinkRetryMs?: number;
  now?: () => Date;
}

export interface SourceOutcome {
  source: string;
  /** 'halted': stopped for good; 'failed': a cycle failed in --once mode; 'stopped': shut down. */
  status: 'completed' | 'stopped' | 'halted' | 'failed';
  error?: OktailError;
}

/**
 * Owns ordering and durability. Pages are delivered one at a time across all sources (one lock), so a
 * checkpoint always describes a prefix of what every sink holds: it records each source's state and
 * each file sink's length in one atomic commit, made only after every sink of the page acknowledged it.
 */
export class Pipeline {
  readonly #o: PipelineOptions;
  readonly #now: () => Date;
  #checkpoint: Checkpoint | null = null;
  #lock: Promise<void> = Promise.resolve();
  readonly #sinksBySource = new Map<string, Sink[]>();
  /**
   * Set when a page reached some sinks but was not committed. From then on no commit may happen: it
   * would record those sinks' positions past an uncommitted page (a duplicate after restart). Restart
   * truncates the file sinks back to the last checkpoint and everything lines up again.
   */
  #poisoned: OktailError | null = null;

  constructor(options: PipelineOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    for (const src of options.sources) {
      this.#sinksBySource.set(
        src.name,
        options.sinks.filter((s) => s.inputs.includes(src.name)),
      );
    }
  }

  /**
   * Runs until `signal` aborts (or, with `once`, until each source finished one cycle). Sinks are opened
   * first so that writes past the last checkpoint are rolled back before anything new arrives.
   */
  async run(signal: AbortSignal): Promise<SourceOutcome[]> {
    const { store, sinks, sources } = this.#o;
    const checkpoint = await store.load();
    this.#checkpoint = checkpoint;
    try {
      for (const sink of sinks) await sink.open(checkpoint.sinks[sink.name], signal);
      for (const src of sources) await this.#initialise(src, checkpoint);
      // Records the starting states and every sink's position before the first request, so a crash
      // before the first page can neither move a "now" start nor keep bytes no checkpoint covers.
      await this.#commit();
      const outcomes = await Promise.all(sources.map((src) => this.#runSource(src, signal)));
      return outcomes;
    } finally {
      for (const sink of sinks) {
        try {
          await sink.close();
        } catch (err) {
          this.#o.log.warn({ sink: sink.name, error: errorMessage(err) }, 'Closing a sink failed.');
        }
      }
    }
  }

  async #initialise(src: PipelineSource, checkpoint: Checkpoint): Promise<void> {
    const existing = checkpoint.sources[src.name];
    if (existing && existing.domain === src.domain) {
      this.#o.telemetry.sourceStarted({
        source: src.name,
        domain: src.domain,
        script: src.logic.name,
        resumed: true,
      });
      return;
    }
    if (existing) {
      this.#o.log.warn(
        { source: src.name, previous_domain: existing.domain, domain: src.domain },
        'The checkpoint belongs to another org; starting this source afresh from start_from.',
      );
    }
    const state = await src.logic.initialState({ startFrom: src.startFrom, now: this.#now().toISOString() });
    checkpoint.sources[src.name] = { domain: src.domain, state, committed_at: this.#now().toISOString() };
    this.#o.telemetry.sourceStarted({
      source: src.name,
      domain: src.domain,
      script: src.logic.name,
      resumed: false,
    });
  }

  async #runSource(src: PipelineSource, signal: AbortSignal): Promise<SourceOutcome> {
    const { telemetry, once } = this.#o;
    while (!signal.aborted) {
      const started = performance.now();
      let pages = 0;
      let events = 0;
      let newest: string | null = null;
      try {
        const state = this.#checkpoint!.sources[src.name]!.state;
        for await (const page of src.source.cycle(state, signal)) {
          await this.#deliver(src, page, signal);
          pages++;
          events += page.batch.count;
          newest = page.newestPublished ?? newest;
        }
        telemetry.cycleFinished({
          source: src.name,
          pages,
          events,
          ms: Math.round(performance.now() - started),
          newestPublished: newest,
        });
      } catch (err) {
        if (signal.aborted) break;
        const error = isOktailError(err)
          ? err
          : new OktailError('INTERNAL', `Unexpected failure: ${errorMessage(err)}`, false, { cause: err });
        if (error.code === 'SCRIPT_ERROR' && error.retryable) {
          telemetry.scriptError({ source: src.name, error: error.message });
          if (once) return { source: src.name, status: 'failed', error };
        } else {
          telemetry.sourceHalted({ source: src.name, code: error.code, error: error.message });
          return { source: src.name, status: 'halted', error };
        }
      }
      if (once) return { source: src.name, status: 'completed' };
      try {
        await sleep(src.intervalMs, signal);
      } catch {
        break;
      }
    }
    return { source: src.name, status: 'stopped' };
  }

  /** Writes a page to every sink of its source, then commits. Serialised across sources. */
  async #deliver(src: PipelineSource, page: SourcePage, signal: AbortSignal): Promise<void> {
    const previous = this.#lock;
    let release!: () => void;
    this.#lock = new Promise<void>((resolve) => (release = resolve));
    await previous;
    let wrote = false;
    try {
      if (this.#poisoned) throw this.#poisoned;
      if (signal.aborted) throw signal.reason;
      const sinks = this.#sinksBySource.get(src.name) ?? [];
      const cp = this.#checkpoint!;
      const current = cp.sources[src.name];
      if (page.batch.count === 0 && current && isDeepStrictEqual(current.state, page.state)) return;
      if (page.batch.count > 0) {
        for (const sink of sinks) {
          await this.#write(sink, page, signal);
          wrote = true;
        }
        this.#o.telemetry.batchDelivered({
          source: src.name,
          events: page.batch.count,
          bytes: page.batch.data.length,
          sinks: sinks.map((s) => s.name),
          newestPublished: page.newestPublished,
        });
      }
      cp.sources[src.name] = {
        domain: src.domain,
        state: page.state,
        committed_at: this.#now().toISOString(),
      };
      wrote = true;
      const started = performance.now();
      await this.#commit(signal);
      this.#o.telemetry.checkpointCommitted({ source: src.name, ms: performance.now() - started });
    } catch (err) {
      if (wrote && !this.#poisoned) {
        this.#poisoned = new OktailError(
          'SINK_WRITE_FAILED',
          `Stopped after an incomplete delivery of source ${src.name} (${errorMessage(err)}); ` +
            'restart to resume from the last checkpoint',
          false,
          { cause: err },
        );
      }
      throw err;
    } finally {
      release();
    }
  }

  async #write(sink: Sink, page: SourcePage, signal: AbortSignal): Promise<void> {
    for (;;) {
      const result = await sink.write(page.batch, signal);
      if (result.kind === 'ok') return;
      if (result.kind === 'fatal') {
        throw new OktailError(
          'SINK_WRITE_FAILED',
          `Sink ${sink.name} failed: ${result.error.message}`,
          false,
          {
            cause: result.error,
          },
        );
      }
      const waitMs = Math.max(result.afterMs ?? 0, this.#o.sinkRetryMs ?? 1000);
      this.#o.telemetry.sinkRetry({
        sink: sink.name,
        source: page.batch.source,
        error: result.error.message,
        retryInMs: waitMs,
      });
      // Abort leaves the page uncommitted: the source fetches it again after a restart.
      await sleep(waitMs, signal);
    }
  }

  /** Commits the whole checkpoint, retrying disk errors; the sinks' positions ride along. */
  async #commit(signal?: AbortSignal): Promise<void> {
    const cp = this.#checkpoint!;
    for (const sink of this.#o.sinks) {
      const position = sink.checkpoint();
      if (position !== undefined) cp.sinks[sink.name] = position;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#o.store.commit(cp);
        return;
      } catch (err) {
        if (signal === undefined || attempt >= 1000) throw err;
        this.#o.log.warn(
          { error: errorMessage(err), attempt: attempt + 1 },
          'Committing the checkpoint failed; will retry.',
        );
        await sleep(Math.min(30_000, 500 * 2 ** Math.min(attempt, 6)), signal);
      }
    }
  }
}
