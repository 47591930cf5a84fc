import type { Config, SinkConfig, SourceConfig } from '../config/schema.js';
import { OktailError } from '../core/errors.js';
import type { Sink } from '../core/sink.js';
import type { SinkContext, SinkRegistration, SourceContext, SourceRegistration } from '../core/registry.js';
import { SINKS } from '../sinks/index.js';
import { SOURCES } from '../sources/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { TelemetrySink } from '../telemetry/telemetry.js';
import { FileCheckpointStore } from './checkpoint-file.js';
import { Pipeline, type PipelineSource } from './pipeline.js';

export { VERSION } from '../core/version.js';
export { createClient, tlsSettings } from '../sources/okta/factory.js';

export interface BuildOptions {
  log: Logger;
  telemetry: TelemetrySink;
  once?: boolean;
  stdout?: NodeJS.WritableStream;
  /** The config file's directory (paths in the config are already resolved against it). */
  configDir?: string;
  /** The config file as the user named it, quoted in recovery commands. */
  configPath?: string;
  /** Keep running with no source left: sources are added at run time (see PipelineOptions.keepAlive). */
  keepAlive?: boolean;
}

export interface BuiltSource {
  source: PipelineSource;
  /** Releases this source's HTTP connections and script engine (after it was removed from the pipeline). */
  close(): Promise<void>;
}

export interface BuiltPipeline {
  pipeline: Pipeline;
  /**
   * Builds one more source from its config, for `Pipeline.addSource` while running (the console adds
   * sources, replicas take them over). Its resources are released by its own `close` or by `close()`.
   */
  createSource(name: string, config: SourceConfig): Promise<BuiltSource>;
  /** Releases HTTP connections and script engines of every source and sink. */
  close(): Promise<void>;
}

/** The sink from its type's registration (src/sinks/index.ts). */
async function createSink(name: string, cfg: SinkConfig, context: SinkContext): Promise<Sink> {
  const registration = SINKS.find((r) => r.type === cfg.type) as SinkRegistration<SinkConfig> | undefined;
  if (!registration)
    throw new OktailError('CONFIG_INVALID', `sinks.${name}.type: unknown sink type ${cfg.type}`);
  return await registration.create(name, cfg, context);
}

/** Wires a validated config into a pipeline, each source and sink from its type's registration. */
export async function buildPipeline(config: Config, options: BuildOptions): Promise<BuiltPipeline> {
  const closers: (() => Promise<void>)[] = [];
  /** Each source's own release steps, so one source can be torn down while the others run. */
  const sourceClosers = new Map<string, (() => Promise<void>)[]>();
  const closeSource = async (name: string) => {
    const steps = sourceClosers.get(name) ?? [];
    sourceClosers.delete(name);
    await Promise.allSettled(steps.map((c) => c()));
  };
  const close = async () => {
    await Promise.allSettled([...sourceClosers.keys()].map(closeSource));
    await Promise.allSettled(closers.map((c) => c()));
  };
  try {
    const shared = new Map<string, unknown>();
    const createSource = async (name: string, cfg: SourceConfig): Promise<BuiltSource> => {
      // Typed as the union's registration: with several source types, find() alone would not say which.
      const registration: SourceRegistration<SourceConfig> | undefined = SOURCES.find(
        (r) => r.type === cfg.type,
      );
      if (!registration) {
        throw new OktailError('CONFIG_INVALID', `sources.${name}.type: unknown source type ${cfg.type}`);
      }
      const steps: (() => Promise<void>)[] = [];
      const context: SourceContext = {
        log: options.log,
        telemetry: options.telemetry,
        shared: <T>(key: string, make: () => T): T => {
          if (!shared.has(key)) shared.set(key, make());
          return shared.get(key) as T;
        },
        onClose: (c) => steps.push(c),
        configPath: options.configPath,
        proxy: config.proxy,
      };
      // A name reused (a source edited and started again) first releases what the old one held.
      await closeSource(name);
      sourceClosers.set(name, steps);
      try {
        const source = await registration.create(name, cfg, context);
        return { source, close: () => closeSource(name) };
      } catch (err) {
        await closeSource(name);
        throw err;
      }
    };
    const sources: PipelineSource[] = [];
    for (const [name, cfg] of Object.entries(config.sources)) {
      sources.push((await createSource(name, cfg)).source);
    }
    const context: SinkContext = {
      log: options.log,
      telemetry: options.telemetry,
      stdout: options.stdout,
      dataDir: config.data_dir,
      configDir: options.configDir ?? process.cwd(),
    };
    const sinks: Sink[] = [];
    for (const [name, cfg] of Object.entries(config.sinks)) {
      const sink = await createSink(name, cfg, context);
      sinks.push(sink);
      closers.push(() => sink.close());
    }
    const store = new FileCheckpointStore(config.data_dir);
    const pipeline = new Pipeline({
      sources,
      sinks,
      store,
      telemetry: options.telemetry,
      log: options.log,
      once: options.once ?? false,
      keepAlive: options.keepAlive ?? false,
    });
    return { pipeline, createSource, close };
  } catch (err) {
    await close();
    throw err;
  }
}
