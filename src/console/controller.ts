import type { Config, SourceConfig } from '../config/schema.js';
import { PromiseLock } from '../core/async.js';
import { errorMessage } from '../core/errors.js';
import type { BuiltPipeline } from '../pipeline/build.js';
import type { SourceOutcome } from '../pipeline/pipeline.js';
import type { Logger } from '../telemetry/logger.js';
import type { ConsoleStatus } from './status.js';
import type { ReadinessSource } from '../telemetry/readiness.js';

/**
 * Starts, replaces and stops sources in the running pipeline for the console, one change at a time.
 * Every source, also those in the config at start, goes through here so the console can tap its pages.
 */
/** The part of `/ready`'s tracker the console drives. */
export interface ConsoleReadiness {
  track(source: ReadinessSource): void;
  untrack(name: string): void;
}

export class SourceController {
  readonly #built: Pick<BuiltPipeline, 'pipeline' | 'createSource'>;
  readonly #status: ConsoleStatus;
  readonly #log: Logger;
  readonly #lock = new PromiseLock();
  readonly #closers = new Map<string, () => Promise<void>>();
  readonly #readiness: ConsoleReadiness | undefined;

  constructor(options: {
    built: Pick<BuiltPipeline, 'pipeline' | 'createSource'>;
    status: ConsoleStatus;
    log: Logger;
    /** `/ready` (when the api endpoint is on): it must follow the sources the console starts and stops. */
    readiness?: ConsoleReadiness;
  }) {
    this.#built = options.built;
    this.#status = options.status;
    this.#log = options.log;
    this.#readiness = options.readiness;
  }

  /** The sinks that take `name` as input in `config`. */
  static sinksOf(config: Config, name: string): string[] {
    return Object.entries(config.sinks)
      .filter(([, s]) => s.inputs.includes(name))
      .map(([n]) => n);
  }

  /** Starts every source of the config; one that cannot start is logged and shown halted. */
  async startAll(config: Config): Promise<void> {
    for (const [name, cfg] of Object.entries(config.sources)) {
      if (cfg.enabled === false) {
        this.#status.disabled(name, cfg.domain);
        continue;
      }
      try {
        await this.start(name, cfg, SourceController.sinksOf(config, name));
      } catch (err) {
        this.#log.error({ source: name, error: errorMessage(err) }, 'Source could not start.');
      }
    }
  }

  start(name: string, cfg: SourceConfig, sinks: string[]): Promise<void> {
    return this.#lock.run(() => this.#start(name, cfg, sinks));
  }

  /** Stops the running source (its page in delivery is committed first) and starts it with `cfg`. */
  replace(name: string, cfg: SourceConfig, sinks: string[]): Promise<void> {
    return this.#lock.run(async () => {
      await this.#stop(name, false);
      await this.#start(name, cfg, sinks);
    });
  }

  /** Stops the source but keeps it (and its checkpoint) known as disabled. */
  disable(name: string, domain: string): Promise<SourceOutcome | undefined> {
    return this.#lock.run(async () => {
      const outcome = await this.#stop(name, false);
      this.#status.disabled(name, domain);
      return outcome;
    });
  }

  stop(name: string, forget: boolean): Promise<SourceOutcome | undefined> {
    return this.#lock.run(async () => {
      const outcome = await this.#stop(name, forget);
      this.#status.forget(name);
      return outcome;
    });
  }

  async #start(name: string, cfg: SourceConfig, sinks: string[]): Promise<void> {
    this.#status.track(name, cfg.domain);
    let built;
    try {
      built = await this.#built.createSource(name, cfg);
    } catch (err) {
      this.#status.sourceHalted({ source: name, code: 'CONFIG_INVALID', error: errorMessage(err) });
      throw err;
    }
    try {
      await this.#built.pipeline.addSource(this.#status.tap(built.source), sinks);
    } catch (err) {
      await built.close();
      this.#status.sourceHalted({ source: name, code: 'INTERNAL', error: errorMessage(err) });
      throw err;
    }
    this.#closers.set(name, () => built.close());
    this.#readiness?.track({
      name,
      staleAfterMs: (2 * cfg.interval_secs + cfg.request_timeout_secs) * 1000,
    });
  }

  async #stop(name: string, forget: boolean): Promise<SourceOutcome | undefined> {
    this.#status.stopped(name);
    this.#readiness?.untrack(name);
    const outcome = await this.#built.pipeline.removeSource(name, { forget });
    const close = this.#closers.get(name);
    this.#closers.delete(name);
    await close?.();
    return outcome;
  }
}
