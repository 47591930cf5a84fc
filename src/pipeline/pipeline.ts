import { isDeepStrictEqual } from 'node:util';
import type {
  Checkpoint,
  CheckpointStore,
  SourceCheckpoint,
  TransactionalWrite,
} from '../core/checkpoint.js';
import type { CollectionLogic } from '../core/collection-logic.js';
import { OktailError, errorMessage, isOktailError } from '../core/errors.js';
import type { EventBatch, Sink, WriteResult } from '../core/sink.js';
import type { JsonObject } from '../core/json.js';
import { copyBatch } from '../core/event-batch.js';
import type { OktaSource, SourcePage } from '../sources/okta/source.js';
import { PromiseLock, sleep } from '../core/async.js';
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
  /** On shutdown, how long the page being delivered may still take to reach its sinks. */
  drainMs?: number;
  /**
   * Keep running until the signal aborts even with no source left (none configured yet, all halted or
   * removed): sources come and go at run time (the console adds them, replicas take them over).
   */
  keepAlive?: boolean;
  now?: () => Date;
}

/** A source being collected: its loop, and how to stop it on its own. */
interface RunningSource {
  src: PipelineSource;
  /** Aborted to stop fetching (shutdown or removal). */
  stop: AbortController;
  /** Aborted when the page in delivery may no longer finish (drain time over). */
  delivery: AbortController;
  done: Promise<SourceOutcome>;
  /** Set by removeSource: the outcome goes to its caller, not to run()'s result. */
  removed: boolean;
}

/** A page delivered to the acknowledged sinks but not yet committed. */
interface PendingPage {
  /** Null when nothing needs its bytes at the commit. */
  batch: EventBatch | null;
  count: number;
  bytes: number;
  state: JsonObject;
  newestPublished: string | null;
}

function pageInfo(page: SourcePage): Omit<PendingPage, 'batch'> {
  return {
    count: page.batch.count,
    bytes: page.batch.data.length,
    state: page.state,
    newestPublished: page.newestPublished,
  };
}

export interface SourceOutcome {
  source: string;
  /** 'halted': stopped for good; 'failed': a cycle failed in --once mode; 'stopped': shut down. */
  status: 'completed' | 'stopped' | 'halted' | 'failed';
  error?: OktailError;
}

/**
 * Owns ordering and durability. A source delivers one page at a time: first to its 'acknowledged' sinks
 * (network sinks, stdout), concurrently and outside any lock, so a slow destination holds back only the
 * sources that feed it; then, under the one commit lock, to its 'positional' sinks (files), immediately
 * followed by the commit. Positional writes happen only right before a commit, so every checkpoint (each
 * source's state and each file's length, in one atomic document) describes a prefix of every file.
 *
 * One page in flight per source: the source fetches the next page only once this one is committed, so
 * memory stays bounded however long a destination is down, and the checkpoint moves strictly in order.
 */
export class Pipeline {
  readonly #o: PipelineOptions;
  readonly #now: () => Date;
  #checkpoint: Checkpoint | null = null;
  readonly #commitLock = new PromiseLock();
  readonly #acknowledgedBySource = new Map<string, Sink[]>();
  readonly #positionalBySource = new Map<string, Sink[]>();
  /** Sinks that failed for good: every source feeding one halts with its error. */
  readonly #failedSinks = new Map<string, OktailError>();
  /**
   * Set when a page reached some positional sinks but was not committed. From then on no commit may
   * happen: it would record those sinks' positions past an uncommitted page (a duplicate after restart).
   * Restart truncates the file sinks back to the last checkpoint and everything lines up again.
   */
  #poisoned: OktailError | null = null;
  readonly #running = new Map<string, RunningSource>();
  /**
   * Per source, the pages delivered but not committed because a holding sink (s3) holds some of them, in
   * order. Their batches are copies, kept only when positional sinks or transactional writes still need
   * the bytes at the commit.
   */
  readonly #pending = new Map<string, PendingPage[]>();
  /** Outcomes of sources that ended on their own or by shutdown, with the order they were started in. */
  readonly #outcomes: { order: number; outcome: SourceOutcome }[] = [];
  #started = 0;
  /** Settles once run() has opened the sinks and made its first commit: sources may be added from then. */
  readonly #ready: Promise<void>;
  #markReady!: (error?: Error) => void;
  #runSignal: AbortSignal | null = null;
  #stopped = false;

  constructor(options: PipelineOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#markReady = (error?: Error) => (error === undefined ? resolve() : reject(error));
    });
    // Nobody may be waiting yet; the rejection is seen by addSource callers only.
    this.#ready.catch(() => {});
    for (const src of options.sources) this.#route(src.name);
  }

  /** The sinks a source delivers to: those named, or those whose `inputs` list it. */
  #route(source: string, sinkNames?: string[]): void {
    const sinks = this.#o.sinks.filter((s) =>
      sinkNames ? sinkNames.includes(s.name) : s.inputs.includes(source),
    );
    this.#acknowledgedBySource.set(
      source,
      sinks.filter((s) => s.kind === 'acknowledged'),
    );
    this.#positionalBySource.set(
      source,
      sinks.filter((s) => s.kind === 'positional'),
    );
    this.#announceRoutes();
  }

  /** Tells every sink which sources now feed it. */
  #announceRoutes(): void {
    for (const sink of this.#o.sinks) {
      if (!sink.routed) continue;
      const feeding = [...this.#acknowledgedBySource, ...this.#positionalBySource]
        .filter(([, sinks]) => sinks.includes(sink))
        .map(([source]) => source);
      sink.routed([...new Set(feeding)]);
    }
  }

  /** Names of the sources being collected now (halted and removed ones are not). */
  sourceNames(): string[] {
    return [...this.#running.keys()];
  }

  /**
   * Starts collecting a source while the pipeline runs, resuming its checkpoint when it belongs to the
   * same org. `sinkNames` routes it (default: the sinks whose `inputs` list it). Its starting state is
   * committed before the first request, as at start-up.
   */
  async addSource(src: PipelineSource, sinkNames?: string[]): Promise<void> {
    await this.#ready;
    if (this.#stopped || this.#runSignal?.aborted) {
      throw new OktailError('INTERNAL', `Cannot add source ${src.name}: the pipeline is stopping`);
    }
    if (this.#running.has(src.name)) {
      throw new OktailError(
        'CONFIG_INVALID',
        `sources.${src.name}: a source of that name is already running`,
      );
    }
    if (sinkNames) {
      const unknown = sinkNames.filter((n) => !this.#o.sinks.some((s) => s.name === n));
      if (unknown.length > 0) {
        throw new OktailError('CONFIG_INVALID', `sources.${src.name}: unknown sinks ${unknown.join(', ')}`);
      }
    }
    this.#route(src.name, sinkNames);
    if (this.#perSource) {
      // Another process may have moved this source since start-up: its committed state is read afresh,
      // and the first commit proves that this process may commit it at all.
      const fresh = await this.#o.store.loadSource!(src.name);
      if (fresh) this.#checkpoint!.sources[src.name] = fresh;
      else delete this.#checkpoint!.sources[src.name];
      await this.#initialise(src, this.#checkpoint!);
      await this.#commitSource(src.name, this.#checkpoint!.sources[src.name]!, []);
    } else {
      await this.#commitLock.run(async () => {
        await this.#initialise(src, this.#checkpoint!);
        await this.#commit();
      });
    }
    this.#start(src);
  }

  /**
   * Stops one source while the others go on: it fetches nothing more, and the page it is delivering
   * reaches its sinks and is committed first (cut short after `drainMs`, leaving it uncommitted, to be
   * fetched again by whoever collects the source next). `forget` then drops its checkpoint.
   * Resolves with the source's outcome once its loop ended (undefined when it was not running).
   */
  async removeSource(name: string, options: { forget?: boolean } = {}): Promise<SourceOutcome | undefined> {
    await this.#ready;
    const running = this.#running.get(name);
    let outcome: SourceOutcome | undefined;
    if (running) {
      running.removed = true;
      running.stop.abort(new Error(`source ${name} removed`));
      outcome = await running.done;
    }
    if (!this.#running.has(name)) {
      this.#acknowledgedBySource.delete(name);
      this.#positionalBySource.delete(name);
      this.#announceRoutes();
    }
    if (options.forget && this.#checkpoint?.sources[name] && !this.#running.has(name)) {
      if (this.#perSource) {
        await this.#commitSource(name, null, []);
        delete this.#checkpoint.sources[name];
        return outcome;
      }
      await this.#commitLock.run(async () => {
        delete this.#checkpoint!.sources[name];
        await this.#commit();
      });
    }
    return outcome;
  }

  /** Runs a source's loop until it ends, stopping it on shutdown with the shared drain time. */
  #start(src: PipelineSource): void {
    const signal = this.#runSignal!;
    const stop = new AbortController();
    const delivery = new AbortController();
    let drainTimer: NodeJS.Timeout | undefined;
    const onStop = () => {
      drainTimer = setTimeout(() => delivery.abort(stop.signal.reason), this.#o.drainMs ?? 10_000);
    };
    stop.signal.addEventListener('abort', onStop, { once: true });
    const onShutdown = () => stop.abort(signal.reason);
    signal.addEventListener('abort', onShutdown, { once: true });
    const order = this.#started++;
    const running: RunningSource = { src, stop, delivery, removed: false, done: Promise.resolve(null!) };
    running.done = this.#runSource(src, stop.signal, delivery.signal).then((outcome) => {
      signal.removeEventListener('abort', onShutdown);
      clearTimeout(drainTimer);
      // Nothing waits for this source's deliveries any more: sink helpers may drop what no one will commit.
      delivery.abort(stop.signal.reason ?? new Error(`source ${src.name} stopped`));
      if (this.#running.get(src.name) === running) this.#running.delete(src.name);
      if (!running.removed) this.#outcomes.push({ order, outcome });
      return outcome;
    });
    this.#running.set(src.name, running);
  }

  /**
   * Runs until `signal` aborts (or, with `once`, until each source finished one cycle). Sinks are opened
   * first so that writes past the last checkpoint are rolled back before anything new arrives. On abort
   * the sources stop fetching; a page being delivered gets `drainMs` to reach its sinks and be committed.
   */
  async run(signal: AbortSignal): Promise<SourceOutcome[]> {
    const { store, sinks, sources } = this.#o;
    this.#runSignal = signal;
    try {
      const checkpoint = await store.load();
      this.#checkpoint = checkpoint;
      try {
        for (const sink of sinks) await sink.open(checkpoint.sinks[sink.name], signal);
        for (const src of sources) await this.#initialise(src, checkpoint);
        // Records the starting states and every sink's position before the first request, so a crash
        // before the first page can neither move a "now" start nor keep bytes no checkpoint covers.
        if (this.#perSource) {
          for (const src of sources) await this.#commitSource(src.name, checkpoint.sources[src.name]!, []);
        } else await this.#commitLock.run(() => this.#commit());
      } catch (err) {
        this.#markReady(err instanceof Error ? err : new Error(errorMessage(err)));
        throw err;
      }
      this.#markReady();
      for (const src of sources) this.#start(src);
      if (this.#o.keepAlive && !this.#o.once && !signal.aborted) {
        await new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => resolve(), { once: true }),
        );
      }
      // Sources added while waiting are waited for too.
      while (this.#running.size > 0) await Promise.all([...this.#running.values()].map((r) => r.done));
      return this.#outcomes.sort((a, b) => a.order - b.order).map((o) => o.outcome);
    } finally {
      this.#stopped = true;
      for (const r of this.#running.values())
        r.delivery.abort(signal.reason ?? new Error('pipeline finished'));
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

  async #runSource(src: PipelineSource, signal: AbortSignal, delivery: AbortSignal): Promise<SourceOutcome> {
    try {
      return await this.#collect(src, signal, delivery);
    } finally {
      // Whatever is still held was not committed: whoever collects the source next fetches it again.
      this.#forgetHeld(src.name);
    }
  }

  /** Drops the source's pending pages and what its holding sinks keep of them, delivering nothing. */
  #forgetHeld(name: string): void {
    this.#pending.delete(name);
    for (const sink of this.#o.sinks) sink.holds?.drop(name);
  }

  async #collect(src: PipelineSource, signal: AbortSignal, delivery: AbortSignal): Promise<SourceOutcome> {
    const { telemetry, once } = this.#o;
    let wait = false;
    while (!signal.aborted) {
      try {
        if (wait) await this.#idle(src, signal, delivery);
        wait = true;
        const started = performance.now();
        let pages = 0;
        let events = 0;
        let newest: string | null = null;
        // Held pages were delivered: the cycle goes on after them, not after the last commit.
        for await (const page of src.source.cycle(this.#latestState(src.name), signal)) {
          // Shutdown: the page being delivered is finished, no new one is started.
          if (signal.aborted) break;
          await this.#deliver(src, page, delivery);
          pages++;
          events += page.batch.count;
          newest = page.newestPublished ?? newest;
        }
        if (signal.aborted) break;
        // --once ends with everything committed: no later cycle would deliver what a holding sink keeps.
        if (once) await this.#flush(src, delivery);
        telemetry.cycleFinished({
          source: src.name,
          pages,
          events,
          ms: Math.round(performance.now() - started),
          newestPublished: newest,
        });
        if (once) return { source: src.name, status: 'completed' };
      } catch (err) {
        if (signal.aborted && !isOktailError(err, 'SINK_WRITE_FAILED')) break;
        const error = isOktailError(err)
          ? err
          : new OktailError('INTERNAL', `Unexpected failure: ${errorMessage(err)}`, false, { cause: err });
        if (error.code === 'LEASE_LOST') {
          // Another process owns the source now: stop without halting (nothing of it is delivered here
          // any more; its new owner resumes from the last commit).
          this.#o.log.warn(
            { source: src.name, error: error.message },
            'Stopped a source this process no longer owns.',
          );
          return { source: src.name, status: 'stopped', error };
        }
        if (error.code === 'SCRIPT_ERROR' && error.retryable) {
          telemetry.scriptError({ source: src.name, error: error.message });
          if (once) return { source: src.name, status: 'failed', error };
        } else if (error.code === 'SINK_WRITE_FAILED' && error.retryable) {
          // Shutdown cut a delivery short: the page stays uncommitted and is fetched again after restart.
          break;
        } else {
          telemetry.sourceHalted({ source: src.name, code: error.code, error: error.message });
          return { source: src.name, status: 'halted', error };
        }
      }
    }
    await this.#drain(src, delivery);
    return { source: src.name, status: 'stopped' };
  }

  /** The state the source's next request starts from: its last delivered page's, committed or held. */
  #latestState(name: string): JsonObject {
    return this.#pending.get(name)?.at(-1)?.state ?? this.#checkpoint!.sources[name]!.state;
  }

  /** The source's acknowledged sinks that hold pages (s3). */
  #holding(name: string): Sink[] {
    return (this.#acknowledgedBySource.get(name) ?? []).filter((s) => s.holds !== undefined);
  }

  /** When the first of the source's holding sinks wants its pages delivered (undefined: none holds any). */
  #dueAt(name: string): number | undefined {
    let due: number | undefined;
    for (const sink of this.#holding(name)) {
      const at = sink.holds!.dueAt(name);
      if (at !== undefined && (due === undefined || at < due)) due = at;
    }
    return due;
  }

  /** Waits out the interval between cycles, delivering held pages when they come due. */
  async #idle(src: PipelineSource, signal: AbortSignal, delivery: AbortSignal): Promise<void> {
    const end = performance.now() + src.intervalMs;
    for (;;) {
      const due = this.#dueAt(src.name);
      const now = performance.now();
      if (due !== undefined && due <= now) {
        await this.#flush(src, delivery);
        continue;
      }
      if (now >= end) return;
      await sleep(Math.min(end, due ?? end) - now, signal);
    }
  }

  /** Shutdown or removal: held pages are delivered and committed if the drain time allows. */
  async #drain(src: PipelineSource, delivery: AbortSignal): Promise<void> {
    if (!this.#pending.get(src.name)?.length) return;
    try {
      await this.#flush(src, delivery);
    } catch (err) {
      this.#o.log.warn(
        { source: src.name, error: errorMessage(err) },
        'Pages held for delivery were not committed at shutdown; they are fetched again at the next start.',
      );
    }
  }

  /**
   * Has every holding sink of the source deliver what it holds, then commits the pending pages. All of
   * them at once and a commit right after: so between two commits a holding sink delivers at most one
   * unit per source, starting right after the checkpoint, which a replay after a crash starts again.
   */
  async #flush(src: PipelineSource, signal: AbortSignal): Promise<void> {
    const pending = this.#pending.get(src.name);
    if (!pending || pending.length === 0) return;
    const holding = this.#holding(src.name).filter((s) => s.holds!.dueAt(src.name) !== undefined);
    const results = await Promise.allSettled(
      holding.map((sink) => this.#write(sink, src.name, (s) => sink.holds!.flush(src.name, s), signal)),
    );
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    await this.#commitPages(src, pending, signal);
    this.#pending.delete(src.name);
  }

  /**
   * Delivers a page to the acknowledged sinks (concurrently, no lock), then commits it with the positional
   * sinks, unless a holding sink keeps it: then it waits, with the pages before it, for that sink's flush.
   * `signal` aborts only once shutdown's drain time is over.
   */
  async #deliver(src: PipelineSource, page: SourcePage, signal: AbortSignal): Promise<void> {
    if (!this.#perSource && this.#poisoned) throw this.#poisoned;
    const { batch } = page;
    if (batch.count === 0 && isDeepStrictEqual(this.#latestState(src.name), page.state)) return;
    const acknowledged = this.#acknowledgedBySource.get(src.name) ?? [];
    const positional = this.#positionalBySource.get(src.name) ?? [];
    // Sinks written inside a per-source store's commit transaction get the page there.
    const inCommit = batch.count > 0 ? acknowledged.filter((s) => this.#inCommit(s, batch)) : [];
    let held = false;
    if (batch.count > 0) {
      for (const sink of [...acknowledged, ...positional]) {
        const failed = this.#failedSinks.get(sink.name);
        if (failed) throw failed;
      }
      // A page that does not fit what a holding sink keeps: that is delivered and committed first, so a
      // unit never spans the cut and always starts right after a checkpoint.
      if (this.#pending.get(src.name)?.length && acknowledged.some((s) => s.holds && !s.holds.fits(batch))) {
        await this.#flush(src, signal);
      }
      const now = acknowledged.filter((s) => !inCommit.includes(s));
      // Every acknowledged sink gets the page even if one fails: each keeps its own retry loop.
      const results = await Promise.allSettled(
        now.map((sink) => this.#write(sink, src.name, (s) => sink.write(batch, s), signal)),
      );
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) {
        // A holding sink may have taken the page, which is not pending: what it holds must never be
        // delivered with a commit short of that page (the replay would store the page again). Today a
        // failed write ends the source before any flush; this keeps it so.
        if (now.some((s) => s.holds)) this.#forgetHeld(src.name);
        throw failed.reason;
      }
      held = results.some((r) => r.status === 'fulfilled' && r.value === 'held');
    }
    const pending = this.#pending.get(src.name) ?? [];
    if (!held && pending.length === 0) {
      await this.#commitPages(src, [{ ...pageInfo(page), batch }], signal);
      return;
    }
    // Positional and in-commit sinks get the bytes at the commit, after the page's buffer was reused.
    const keepBytes = batch.count > 0 && (positional.length > 0 || inCommit.length > 0);
    pending.push({ ...pageInfo(page), batch: keepBytes ? copyBatch(batch) : null });
    this.#pending.set(src.name, pending);
    const due = this.#dueAt(src.name);
    if (due !== undefined && due <= performance.now()) await this.#flush(src, signal);
  }

  /** Whether the sink gets its batches inside the per-source store's commit transaction. */
  #inCommit(sink: Sink, batch: EventBatch): boolean {
    return this.#perSource && this.#o.store.transactionalWrite?.(sink, batch) !== undefined;
  }

  /**
   * Commits pages the acknowledged sinks have: with a shared store, writes them to the positional sinks
   * under the commit lock and commits the whole checkpoint; with a per-source store, commits the source
   * alone, with the transactional sinks' writes inside its transaction.
   */
  async #commitPages(src: PipelineSource, pages: readonly PendingPage[], signal: AbortSignal): Promise<void> {
    const last = pages.at(-1)!;
    const entry: SourceCheckpoint = {
      domain: src.domain,
      state: last.state,
      committed_at: this.#now().toISOString(),
    };
    const acknowledged = this.#acknowledgedBySource.get(src.name) ?? [];
    const positional = this.#positionalBySource.get(src.name) ?? [];
    const delivered = () => {
      for (const p of pages) {
        if (p.count === 0) continue;
        this.#o.telemetry.batchDelivered({
          source: src.name,
          events: p.count,
          bytes: p.bytes,
          sinks: [...acknowledged, ...positional].map((s) => s.name),
          newestPublished: p.newestPublished,
        });
      }
    };
    const started = performance.now();
    if (this.#perSource) {
      const writes: TransactionalWrite[] = [];
      for (const p of pages) {
        if (p.count === 0 || p.batch === null) continue;
        for (const sink of acknowledged) {
          const write = this.#o.store.transactionalWrite?.(sink, p.batch);
          if (write) writes.push(write);
        }
      }
      await this.#commitSource(src.name, entry, writes, signal);
      this.#checkpoint!.sources[src.name] = entry;
      delivered();
      this.#o.telemetry.checkpointCommitted({ source: src.name, ms: performance.now() - started });
      return;
    }
    await this.#commitLock.run(async () => {
      let wrote = false;
      try {
        if (this.#poisoned) throw this.#poisoned;
        for (const p of pages) {
          if (p.count === 0 || p.batch === null) continue;
          for (const sink of positional) {
            const batch = p.batch;
            await this.#write(sink, src.name, (s) => sink.write(batch, s), signal);
            wrote = true;
          }
        }
        delivered();
        this.#checkpoint!.sources[src.name] = entry;
        wrote = true;
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
      }
    });
  }

  /** The store commits each source on its own (several processes share it). */
  get #perSource(): boolean {
    return this.#o.store.commitSource !== undefined;
  }

  /** One source's commit through a per-source store, retrying what may pass later (not a lost lease). */
  async #commitSource(
    name: string,
    entry: SourceCheckpoint | null,
    writes: readonly TransactionalWrite[],
    signal?: AbortSignal,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#o.store.commitSource!(name, entry, writes);
        return;
      } catch (err) {
        if (signal === undefined || attempt >= 1000 || isOktailError(err, 'LEASE_LOST')) throw err;
        if (isOktailError(err) && !err.retryable) throw err;
        this.#o.log.warn(
          { source: name, error: errorMessage(err), attempt: attempt + 1 },
          'Committing the checkpoint failed; will retry.',
        );
        try {
          await sleep(Math.min(30_000, 500 * 2 ** Math.min(attempt, 6)), signal);
        } catch {
          throw new OktailError(
            'SINK_WRITE_FAILED',
            `Committing source ${name} interrupted by shutdown (${errorMessage(err)})`,
            true,
          );
        }
      }
    }
  }

  /**
   * Writes (or flushes) until the sink accepts; `retry` waits (at least what the sink asked for), `fatal`
   * halts. Resolves `held` when a holding sink kept the page.
   */
  async #write(
    sink: Sink,
    source: string,
    attempt: (signal: AbortSignal) => Promise<WriteResult>,
    signal: AbortSignal,
  ): Promise<'ok' | 'held'> {
    for (;;) {
      if (signal.aborted) throw this.#interrupted(sink, signal);
      const result = await attempt(signal);
      if (result.kind === 'ok' || result.kind === 'held') return result.kind;
      if (result.kind === 'fatal') {
        const error = isOktailError(result.error, 'SINK_WRITE_FAILED')
          ? result.error
          : new OktailError('SINK_WRITE_FAILED', `Sink ${sink.name} failed: ${result.error.message}`, false, {
              cause: result.error,
            });
        if (!this.#failedSinks.has(sink.name)) this.#failedSinks.set(sink.name, error);
        throw error;
      }
      if (signal.aborted) throw this.#interrupted(sink, signal);
      const waitMs = Math.max(result.afterMs ?? 0, this.#o.sinkRetryMs ?? 1000);
      this.#o.telemetry.sinkRetry({
        sink: sink.name,
        source,
        error: result.error.message,
        retryInMs: waitMs,
      });
      try {
        await sleep(waitMs, signal);
      } catch {
        throw this.#interrupted(sink, signal);
      }
    }
  }

  /** Shutdown ended a delivery: retryable, so the source stops without halting; nothing is committed. */
  #interrupted(sink: Sink, signal: AbortSignal): OktailError {
    return new OktailError(
      'SINK_WRITE_FAILED',
      `Delivery to sink ${sink.name} interrupted by shutdown (${errorMessage(signal.reason)})`,
      true,
    );
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
