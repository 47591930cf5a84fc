import { setFlagsFromString } from 'node:v8';
import { Worker, type ResourceLimits, type WorkerOptions } from 'node:worker_threads';

import { OktailError, errorMessage } from '../core/errors.js';
import type { RawEvents, TransformedEvents } from '../core/collection-logic.js';
import type { JsonValue } from '../core/json.js';
import { ScriptFailure, transformLimits, type ScriptLimits, type ScriptLog } from './failure.js';
import type { ScriptIssue } from './script-checks.js';
import {
  deserializeError,
  type WorkerInit,
  type WorkerMessage,
  type WorkerRequest,
} from './worker-protocol.js';

/**
 * How long past a call's own deadline the host waits for the worker's answer. The sandbox enforces the
 * deadline itself between Lua instructions, so an answer later than this means the worker is stuck in one
 * C call (a pathological pattern in `string.find`, say); the margin only has to cover a busy machine.
 */
export const WATCHDOG_MARGIN_MS = 1000;

/** A fresh thread and WebAssembly instance take well under a second; compiling TypeScript (tests) longer. */
const STARTUP_TIMEOUT_MS = 60_000;

/**
 * A second net behind the sandbox's own memory limit, which covers the Lua state: this one bounds the
 * worker's JavaScript heap (a page's events on their way in and out). Exceeding it stops the worker, not
 * the process. The young generation is capped too: a page transform allocates a few MB that die with the
 * page, and at V8's default size (16 MB semi-spaces) the worker held some 50 MB of them between collections
 * (peak RSS 176 MB against 125 MB at 8 MB, over 200 pages of example 2, at the same CPU per event).
 */
const RESOURCE_LIMITS: ResourceLimits = { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 8 };

export interface IsolatedScriptOptions {
  name: string;
  chunkName: string;
  source: Uint8Array;
  limits: ScriptLimits;
  log?: ScriptLog | undefined;
  /** Sampled once per call (a function cannot cross threads): `now()` reads the same instant all call long. */
  clock?: (() => number) | undefined;
}

/**
 * A collection script running in its own worker thread, watched from this one. A call the worker does not
 * answer within its deadline plus a margin terminates the worker and fails as a retryable deadline error;
 * the next call starts a fresh worker, which loads the script again (its globals start afresh).
 */
export class IsolatedScript {
  private engine: Engine | null;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly options: IsolatedScriptOptions,
    first: Engine,
    readonly tags: Record<string, JsonValue>,
    readonly hasTransform: boolean,
  ) {
    this.engine = first;
  }

  /** Starts the worker and loads the script; load failures keep the sandbox's messages and retryability. */
  static async load(options: IsolatedScriptOptions): Promise<IsolatedScript> {
    const engine = new Engine(options, 'run');
    const loaded = await engine.started;
    if (loaded.type !== 'loaded') throw new Error('the script worker answered a load with a check');
    return new IsolatedScript(options, engine, loaded.tags, loaded.hasTransform);
  }

  call(hook: string, args: JsonValue[], resultCount: number): Promise<(JsonValue | undefined)[]> {
    return this.enqueue(async () => {
      const engine = await this.ready();
      const request = { type: 'call', hook, args, resultCount } as const;
      return (await engine.request(request, hook, this.options.limits.deadlineMs)) as (
        JsonValue | undefined
      )[];
    });
  }

  transformPage(events: RawEvents): Promise<TransformedEvents> {
    return this.enqueue(async () => {
      const engine = await this.ready();
      const { deadlineMs } = transformLimits(this.options.limits, events.count);
      // Bytes in shared memory (the Okta source's body buffer) are read in place by the script's thread.
      // Others move there and back instead of being copied: a copy per page is garbage that V8 frees only
      // when its heap next collects, which a transform that allocates little seldom makes it do (the
      // script's thread held up to 60 MB of dead pages). A view on a larger or pooled buffer is copied
      // first, since moving it would take the whole buffer along.
      const shared = events.body.buffer instanceof SharedArrayBuffer;
      const whole =
        events.body.buffer instanceof ArrayBuffer &&
        events.body.byteOffset === 0 &&
        events.body.byteLength === events.body.buffer.byteLength &&
        events.body.byteLength >= 4096;
      const body = shared || whole ? events.body : new Uint8Array(events.body);
      const request = {
        type: 'transform',
        body,
        offsets: events.offsets,
        count: events.count,
        ...(events.escapedKeys ? { escapedKeys: events.escapedKeys } : {}),
      } as const;
      const transfer = shared ? [] : [body.buffer as ArrayBuffer];
      return (await engine.request(request, 'transform', deadlineMs, transfer)) as TransformedEvents;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const engine = this.engine;
    this.engine = null;
    await engine?.stop();
  }

  /** One call at a time, as with the sandbox in this thread: a queued call's watchdog starts when it is sent. */
  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work, work);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async ready(): Promise<Engine> {
    if (this.closed)
      throw new OktailError('SCRIPT_ERROR', `${this.options.name}: the script has been closed`, false);
    if (this.engine !== null && !this.engine.retired) return this.engine;
    const engine = new Engine(this.options, 'run');
    this.engine = engine;
    try {
      await engine.started;
    } catch (err) {
      this.engine = null;
      void engine.stop();
      if (this.closed) throw err;
      // The same bytes loaded before, so a failure now depends on time or load, not on the file: retry later.
      throw retryable(err);
    }
    if (this.closed) {
      await engine.stop();
      throw new OktailError('SCRIPT_ERROR', `${this.options.name}: the script has been closed`, false);
    }
    return engine;
  }
}

/** `oktail validate`'s checks, run in a worker under the same watchdog as a run. */
export async function checkIsolated(options: IsolatedScriptOptions): Promise<ScriptIssue[]> {
  const engine = new Engine(options, 'check');
  try {
    const checked = await engine.started;
    if (checked.type !== 'checked') throw new Error('the script worker answered a check with a load');
    return checked.issues;
  } catch (err) {
    if (err instanceof ScriptFailure) return [{ line: err.line, message: err.detail }];
    return [{ line: null, message: errorMessage(err) }];
  } finally {
    await engine.stop();
  }
}

interface Operation {
  hook: string;
  /** Whether a failure of the engine itself (not of the script) may be retried. */
  retryable: boolean;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** One worker's life: from its start to its termination (by the watchdog, a broken runtime or close). */
class Engine {
  readonly started: Promise<Extract<WorkerMessage, { type: 'loaded' | 'checked' }>>;
  /** Set once this worker may serve no more calls. */
  retired = false;
  private readonly worker: Worker;
  private current: Operation | null = null;
  private timer: NodeJS.Timeout | null = null;
  private nextId = 1;

  constructor(
    private readonly options: IsolatedScriptOptions,
    private readonly mode: WorkerInit['mode'],
  ) {
    const now = options.clock?.() ?? null;
    this.worker = spawn({
      mode,
      name: options.name,
      chunkName: options.chunkName,
      source: options.source,
      limits: options.limits,
      pinnedClock: options.clock !== undefined,
      now,
    });
    this.started = new Promise((resolve, reject) => {
      this.current = {
        hook: 'top-level code',
        retryable: false,
        resolve,
        reject,
      };
    });
    this.arm(STARTUP_TIMEOUT_MS, () =>
      this.engineFailure(`did not start within ${STARTUP_TIMEOUT_MS / 1000} s`),
    );
    this.worker.on('message', (message: WorkerMessage) => this.receive(message));
    this.worker.on('error', (err) => this.crash(`stopped: ${errorMessage(err)}`));
    this.worker.on('exit', (code) => this.crash(`exited (code ${code})`));
    // The process may exit while the worker idles; a call in flight is held open by its watchdog timer.
    // After the listeners: adding a message listener refs the worker's port again.
    this.worker.unref();
  }

  request(
    request: DistributiveOmit<WorkerRequest, 'id' | 'now'>,
    hook: string,
    deadlineMs: number,
    transfer: ArrayBuffer[] = [],
  ): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.current = { hook, retryable: true, resolve, reject };
      this.arm(deadlineMs + WATCHDOG_MARGIN_MS, () => this.deadlineFailure(hook, deadlineMs));
      this.worker.postMessage({ ...request, id, now: this.options.clock?.() ?? null }, transfer);
    });
  }

  async stop(): Promise<void> {
    this.retired = true;
    this.disarm();
    await this.worker.terminate();
    this.settle(new OktailError('SCRIPT_ERROR', `${this.options.name}: the script has been closed`, false));
  }

  private receive(message: WorkerMessage): void {
    switch (message.type) {
      case 'log':
        try {
          this.options.log?.(message.level, message.message);
        } catch {
          // A failing log callback must not become the script's failure.
        }
        return;
      case 'phase':
        if (this.current !== null) this.current.hook = message.hook;
        this.arm(message.deadlineMs + WATCHDOG_MARGIN_MS, () =>
          this.deadlineFailure(message.hook, message.deadlineMs),
        );
        return;
      case 'loaded':
      case 'checked':
        this.settle(null, message);
        return;
      case 'result':
        if (message.broken) this.retire();
        this.settle(null, message.value);
        return;
      case 'failure':
        if (message.broken || message.id === null) this.retire();
        this.settle(deserializeError(message.error));
        return;
    }
  }

  private deadlineFailure(hook: string, deadlineMs: number): ScriptFailure {
    const consequence = this.mode === 'check' || hook === 'top-level code' ? 'stopped' : 'restarted';
    const detail = `${hook} exceeded its deadline (${deadlineMs} ms); a library call could not be interrupted, so the script's engine was ${consequence}`;
    return new ScriptFailure(
      `${this.options.name}: ${detail}`,
      hook,
      'deadline',
      null,
      detail,
      this.current?.retryable ?? true,
    );
  }

  private engineFailure(what: string): ScriptFailure {
    const hook = this.current?.hook ?? 'top-level code';
    const detail = `${hook} failed: the script's engine ${what}`;
    return new ScriptFailure(
      `${this.options.name}: ${detail}`,
      hook,
      'runtime',
      null,
      detail,
      this.current?.retryable ?? true,
    );
  }

  /** Runs `onTimeout` unless the current operation settles first; the worker is then beyond saving. */
  private arm(ms: number, failure: () => ScriptFailure): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.timer = null;
      const err = failure();
      this.retire();
      this.settle(err);
    }, ms);
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private crash(what: string): void {
    if (this.current === null) {
      this.retired = true;
      return;
    }
    const err = this.engineFailure(what);
    this.retired = true;
    this.settle(err);
  }

  private retire(): void {
    if (this.retired) return;
    this.retired = true;
    void this.worker.terminate();
  }

  private settle(err: Error | null, value?: unknown): void {
    const operation = this.current;
    if (operation === null) return;
    this.current = null;
    this.disarm();
    if (err === null) operation.resolve(value);
    else operation.reject(err);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function retryable(err: unknown): unknown {
  if (err instanceof ScriptFailure) {
    return new ScriptFailure(err.message, err.hook, err.kind, err.line, err.detail, true, err.cause);
  }
  if (err instanceof OktailError) return new OktailError(err.code, err.message, true, { cause: err.cause });
  return err;
}

/**
 * The Lua VM is WebAssembly. V8 compiles it with its baseline compiler, then recompiles the hot interpreter
 * loop with its optimising one, which holds 25-30 MB for a moment early in a backfill, when the first pages
 * are in memory too: that moment set the collector's peak RSS (150-165 MB backfilling a million events,
 * 135-145 MB without; `npm run bench`). Hook and per-event transform CPU measured the same either way, so
 * the baseline code stays. The flag is process-wide and read only when a module is compiled.
 */
let baselineOnly = false;
export function baselineWasmOnly(): void {
  if (baselineOnly) return;
  setFlagsFromString('--liftoff-only');
  baselineOnly = true;
}

/** Starts a script worker with these options (workerData, resource limits). */
export type WorkerStart = (options: WorkerOptions) => Worker;

/**
 * From the compiled `script-worker.js` next to this module: in dist/script/, or in dist/bundle/, where
 * the worker is an entry point of its own. Tests that run the TypeScript sources have no such file and
 * replace this with `setWorkerStart` (test/support/vitest-setup.ts).
 */
let workerStart: WorkerStart = (options) =>
  new Worker(new URL('./script-worker.js', import.meta.url), options);

export function setWorkerStart(start: WorkerStart): void {
  workerStart = start;
}

function spawn(init: WorkerInit): Worker {
  baselineWasmOnly();
  return workerStart({ workerData: init, resourceLimits: RESOURCE_LIMITS });
}
