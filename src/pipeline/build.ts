import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import type { Config, OktaSourceConfig, SinkConfig } from '../config/schema.js';
import type { CollectionLogic } from '../core/collection-logic.js';
import { OktailError } from '../core/errors.js';
import type { Sink } from '../core/sink.js';
import type { ProxyConfig } from '../config/proxy.js';
import { authSettings } from '../sources/okta/auth/index.js';
import type { SinkContext, SinkRegistration } from '../core/registry.js';
import { SINKS } from '../sinks/index.js';
import { OktaHttpClient, type OktaTlsSettings } from '../sources/okta/client.js';
import { sourceProxy } from '../sources/okta/proxy.js';
import { RateLimiter } from '../sources/okta/rate-limiter.js';
import { OktaSource } from '../sources/okta/source.js';
import { loadCollectionScript } from '../script/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { TelemetrySink } from '../telemetry/telemetry.js';
import { FileCheckpointStore } from './checkpoint-file.js';
import { Pipeline, type PipelineSource } from './pipeline.js';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface BuildOptions {
  log: Logger;
  telemetry: TelemetrySink;
  once?: boolean;
  stdout?: NodeJS.WritableStream;
  /** The config file's directory (paths in the config are already resolved against it). */
  configDir?: string;
}

export interface BuiltPipeline {
  pipeline: Pipeline;
  /** Releases HTTP connections and script engines. */
  close(): Promise<void>;
}

/** Reads a TLS file named in the config, naming the key when it can't. */
async function readConfigFile(path: string, keyPath: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new OktailError(
      'CONFIG_INVALID',
      `${keyPath}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      false,
      { cause: err },
    );
  }
}

export async function tlsSettings(name: string, cfg: OktaSourceConfig): Promise<OktaTlsSettings | undefined> {
  const tls = cfg.tls;
  if (!tls?.enabled) return undefined;
  const at = (key: string) => `sources.${name}.tls.${key}`;
  return {
    ca: tls.ca_file ? await readConfigFile(tls.ca_file, at('ca_file')) : undefined,
    cert: tls.crt_file ? await readConfigFile(tls.crt_file, at('crt_file')) : undefined,
    key: tls.key_file ? await readConfigFile(tls.key_file, at('key_file')) : undefined,
    passphrase: tls.key_pass,
    verifyCertificate: tls.verify_certificate,
    verifyHostname: tls.verify_hostname,
  };
}

export async function createClient(
  name: string,
  cfg: OktaSourceConfig,
  globalProxy?: ProxyConfig,
): Promise<OktaHttpClient> {
  return new OktaHttpClient({
    domain: cfg.domain,
    auth: await authSettings(name, cfg.auth),
    tls: await tlsSettings(name, cfg),
    proxy: await sourceProxy(name, cfg.domain, cfg.proxy, globalProxy),
    requestTimeoutMs: cfg.request_timeout_secs * 1000,
    userAgent: `oktail/${VERSION}`,
  });
}

/** The sink from its type's registration (src/sinks/index.ts). */
async function createSink(name: string, cfg: SinkConfig, context: SinkContext): Promise<Sink> {
  const registration = SINKS.find((r) => r.type === cfg.type) as SinkRegistration<SinkConfig> | undefined;
  if (!registration)
    throw new OktailError('CONFIG_INVALID', `sinks.${name}.type: unknown sink type ${cfg.type}`);
  return await registration.create(name, cfg, context);
}

/** Wires a validated config into a pipeline: one client and logic per source, one limiter per org. */
export async function buildPipeline(config: Config, options: BuildOptions): Promise<BuiltPipeline> {
  const clients: OktaHttpClient[] = [];
  const logics: CollectionLogic[] = [];
  const limiters = new Map<string, RateLimiter>();
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    await Promise.allSettled([
      ...clients.map((c) => c.close()),
      ...logics.map((l) => l.close()),
      ...closers.map((c) => c()),
    ]);
  };
  try {
    const sources: PipelineSource[] = [];
    for (const [name, cfg] of Object.entries(config.sources)) {
      const client = await createClient(name, cfg, config.proxy);
      clients.push(client);
      const logic = await loadCollectionScript({
        path: cfg.script ?? undefined,
        log: (level, message) => scriptLog(options.log, name, level, message),
      });
      logics.push(logic);
      // The bucket is the org's, so sources reading the same org share one limiter (and one slot).
      let limiter = limiters.get(cfg.domain);
      if (!limiter) {
        limiter = new RateLimiter({
          maxShare: cfg.rate_limit.max_share,
          minRemaining: cfg.rate_limit.min_remaining,
        });
        limiters.set(cfg.domain, limiter);
      }
      const source = new OktaSource({
        name,
        client,
        limiter,
        logic,
        telemetry: options.telemetry,
        retry: {
          initialBackoffMs: cfg.retry.initial_backoff_ms,
          maxBackoffMs: cfg.retry.max_backoff_secs * 1000,
        },
      });
      sources.push({
        name,
        domain: cfg.domain,
        source,
        logic,
        intervalMs: cfg.interval_secs * 1000,
        startFrom: cfg.start_from ?? null,
      });
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

function scriptLog(log: Logger, source: string, level: string, message: string): void {
  const fields = { source, script_message: message };
  if (level === 'error') log.error(fields, 'Collection script says.');
  else if (level === 'warn') log.warn(fields, 'Collection script says.');
  else if (level === 'debug') log.debug(fields, 'Collection script says.');
  else log.info(fields, 'Collection script says.');
}
