import { readFile } from 'node:fs/promises';
import type { ProxyConfig } from '../../config/proxy.js';
import { readSecretFile } from '../../config/secret-file.js';
import { OktailError } from '../../core/errors.js';
import type { SourceContext } from '../../core/registry.js';
import { VERSION } from '../../core/version.js';
import type { PipelineSource } from '../../pipeline/pipeline.js';
import { loadCollectionScript } from '../../script/index.js';
import type { Logger } from '../../telemetry/logger.js';
import { authSettings } from './auth/index.js';
import { OktaHttpClient, type OktaTlsSettings } from './client.js';
import type { OktaSourceConfig } from './config.js';
import { sourceProxy } from './proxy.js';
import { RateLimiter } from './rate-limiter.js';
import { OktaSource } from './source.js';

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
    passphrase:
      tls.key_pass_file === undefined
        ? tls.key_pass
        : await readSecretFile(tls.key_pass_file, at('key_pass_file')),
    verifyCertificate: tls.verify_certificate,
    verifyHostname: tls.verify_hostname,
  };
}

export async function createClient(
  name: string,
  cfg: OktaSourceConfig,
  globalProxy?: ProxyConfig,
  cluster?: SourceContext['cluster'],
): Promise<OktaHttpClient> {
  return new OktaHttpClient({
    domain: cfg.domain,
    auth: await authSettings(name, cfg.auth),
    tls: await tlsSettings(name, cfg),
    proxy: await sourceProxy(name, cfg.domain, cfg.proxy, globalProxy),
    requestTimeoutMs: cfg.request_timeout_secs * 1000,
    // A replica names itself, so the org's log (and a test's emulator) tells which one polled.
    userAgent: cluster ? `oktail/${VERSION} (node ${cluster.nodeId})` : `oktail/${VERSION}`,
    ...(cluster ? { beforeRequest: () => cluster.ensureLease(name) } : {}),
  });
}

/** One client and collection logic per source; one rate limiter per org, shared by its sources. */
export async function createOktaSource(
  name: string,
  cfg: OktaSourceConfig,
  context: SourceContext,
): Promise<PipelineSource> {
  const client = await createClient(name, cfg, context.proxy, context.cluster);
  context.onClose(() => client.close());
  const logic = await loadCollectionScript({
    path: cfg.script ?? undefined,
    log: (level, message) => scriptLog(context.log, name, level, message),
  });
  context.onClose(() => logic.close());
  // The bucket is the org's, so sources reading the same org share one limiter (and one slot).
  const limiter = context.shared(
    `okta-rate-limiter:${cfg.domain}`,
    () => new RateLimiter({ maxShare: cfg.rate_limit.max_share, minRemaining: cfg.rate_limit.min_remaining }),
  );
  const source = new OktaSource({
    name,
    client,
    limiter,
    logic,
    telemetry: context.telemetry,
    configPath: context.configPath,
    retry: {
      initialBackoffMs: cfg.retry.initial_backoff_ms,
      maxBackoffMs: cfg.retry.max_backoff_secs * 1000,
    },
  });
  return {
    name,
    domain: cfg.domain,
    source,
    logic,
    intervalMs: cfg.interval_secs * 1000,
    startFrom: cfg.start_from ?? null,
  };
}

function scriptLog(log: Logger, source: string, level: string, message: string): void {
  const fields = { source, script_message: message };
  if (level === 'error') log.error(fields, 'Collection script says.');
  else if (level === 'warn') log.warn(fields, 'Collection script says.');
  else if (level === 'debug') log.debug(fields, 'Collection script says.');
  else log.info(fields, 'Collection script says.');
}
