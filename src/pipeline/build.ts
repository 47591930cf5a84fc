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
}

export interface BuiltPipeline {
  pipeline: Pipeline;
  /** Releases HTTP connections and script engines. */
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
  const close = async () => {
    await Promise.allSettled(closers.map((c) => c()));
  };
  try {
    const shared = new Map<string, unknown>();
    const sourceContext: SourceContext = {
      log: options.log,
      telemetry: options.telemetry,
      shared: <T>(key: string, make: () => T): T => {
        if (!shared.has(key)) shared.set(key, make());
        return shared.get(key) as T;
      },
      onClose: (c) => closers.push(c),
      configPath: options.configPath,
      proxy: config.proxy,
    };
    const sources: PipelineSource[] = [];
    for (const [name, cfg] of Object.entries(config.sources)) {
      // Typed as the union's registration: with several source types, find() alone would not say which.
      const registration: SourceRegistration<SourceConfig> | undefined = SOURCES.find(
        (r) => r.type === cfg.type,
      );
      if (!registration) {
        throw new OktailError('CONFIG_INVALID', `sources.${name}.type: unknown source type ${cfg.type}`);
      }
      sources.push(await registration.create(name, cfg, sourceContext));
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
    });
    return { pipeline, close };
  } catch (err) {
    await close();
    throw err;
  }
}
