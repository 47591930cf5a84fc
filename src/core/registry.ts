import type * as z from 'zod';
import type { ProxyConfig } from '../config/proxy.js';
import type { PipelineSource } from '../pipeline/pipeline.js';
import type { Logger } from '../telemetry/logger.js';
import type { TelemetrySink } from '../telemetry/telemetry.js';
import type { Sink } from './sink.js';

/** What a sink factory gets besides its own config. */
export interface SinkContext {
  log: Logger;
  telemetry: TelemetrySink;
  /** Where the stdout sink writes; process.stdout when absent. */
  stdout?: NodeJS.WritableStream;
  /** The data directory (absolute), for sinks that keep local state. */
  dataDir: string;
  /** The config file's directory (absolute); path fields are already resolved against it. */
  configDir: string;
}

/**
 * A sink type. Each sink folder exports one; `src/sinks/index.ts` lists them, and the config's `sinks`
 * union, `config schema`/`config example` and the pipeline's factory all come from that list.
 *
 * The schema is a strict zod object including `type` (a literal) and `inputs`. Secret fields are marked
 * once with `.meta({ secret: true })` (redacted in `validate --print`, config errors and logs) and path
 * fields with `.meta({ path: true })` (resolved against the config file's directory by the loader).
 */
export interface SinkRegistration<C> {
  type: string;
  schema: z.ZodType<C>;
  /** What the sink type guarantees, shown by `validate`. */
  guarantee?: 'exactly-once' | 'at-least-once';
  /**
   * Lines for `oktail config example` under `sinks:`, every setting shown (optional ones commented out
   * as `# key: value`). A test checks that the example mentions every key of every sink's schema.
   */
  example?: string;
  create(name: string, config: C, context: SinkContext): Sink | Promise<Sink>;
}

/** Metadata marks read by the config loader. */
export interface FieldMeta {
  /** The value is a secret: never shown. */
  secret?: boolean;
  /** The value is a file path: resolved against the config file's directory. */
  path?: boolean;
}

/** What a source factory gets besides its own config. */
export interface SourceContext {
  log: Logger;
  telemetry: TelemetrySink;
  /** One object per key for the whole pipeline (e.g. one rate limiter per org shared by its sources). */
  shared<T>(key: string, make: () => T): T;
  /** Registers a release step (connections, script engines) run when the pipeline is torn down. */
  onClose(close: () => Promise<void>): void;
  /** The config file as the user named it, quoted in recovery commands. */
  configPath?: string;
  /** The config's global outbound `proxy` block, if any (a source may have its own, which replaces it). */
  proxy?: ProxyConfig | undefined;
  /**
   * Set on a replica sharing its sources (state.backend: postgres): its node id goes into the User-Agent,
   * and every request first awaits `ensureLease` (rejects with LEASE_LOST when the source is gone).
   */
  cluster?: { nodeId: string; ensureLease(source: string): Promise<void> };
}

/** A source type. Each source folder exports one; `src/sources/index.ts` lists them. */
export interface SourceRegistration<C> {
  type: string;
  /** Strict zod object including `type`; secret and path fields marked as for sinks. */
  schema: z.ZodType<C>;
  create(name: string, config: C, context: SourceContext): Promise<PipelineSource>;
}
