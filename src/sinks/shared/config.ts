import { readFile } from 'node:fs/promises';
import type { ConnectionOptions } from 'node:tls';
import * as z from 'zod';
import { OktailError } from '../../core/errors.js';
import { FilePath, intBetween, secretString } from '../../config/fields.js';
import type { NetworkSinkSettings } from './network-sink.js';

/** `batch:` of a network sink, as in Vector. A page larger than these is split into several requests. */
export function batchSchema(defaults: { max_events: number; max_bytes: number; timeout_secs: number }) {
  return z
    .strictObject({
      max_events: intBetween(1, 100_000).default(defaults.max_events).describe('Most events in one request.'),
      max_bytes: intBetween(1024, 1_000_000_000)
        .default(defaults.max_bytes)
        .describe('Most bytes of events in one request (before compression).'),
      timeout_secs: z
        .number()
        .min(0, 'must be between 0 and 3600')
        .max(3600, 'must be between 0 and 3600')
        .default(defaults.timeout_secs)
        .describe('Longest wait for more events before a request that is not full is sent.'),
    })
    .describe('How events are grouped into requests.');
}

/** `request:` of a network sink, as in Vector. */
export function requestSchema(defaults: { timeout_secs: number; concurrency: number }) {
  return z
    .strictObject({
      timeout_secs: intBetween(1, 3600)
        .default(defaults.timeout_secs)
        .describe('Time limit for one request, including waiting for its acknowledgement.'),
      concurrency: intBetween(1, 64)
        .default(defaults.concurrency)
        .describe('Most requests in flight at once.'),
      retry_initial_backoff_secs: z
        .number()
        .min(0.01, 'must be between 0.01 and 60')
        .max(60, 'must be between 0.01 and 60')
        .default(1)
        .describe('First wait after a failed request; it doubles on each retry (with full jitter).'),
      retry_max_duration_secs: intBetween(1, 3600)
        .default(300)
        .describe('Longest wait between retries. Retries never stop until the destination accepts.'),
    })
    .describe('Request timeout, concurrency and retries.');
}

export type BatchConfig = z.output<ReturnType<typeof batchSchema>>;
export type RequestConfig = z.output<ReturnType<typeof requestSchema>>;

/** The helper's settings from a sink's `batch` and `request` config. */
export function networkSinkSettings(batch: BatchConfig, request: RequestConfig): NetworkSinkSettings {
  return {
    batch: {
      maxEvents: batch.max_events,
      maxBytes: batch.max_bytes,
      timeoutMs: Math.round(batch.timeout_secs * 1000),
    },
    request: { timeoutMs: request.timeout_secs * 1000, concurrency: request.concurrency },
    retry: {
      initialBackoffMs: Math.round(request.retry_initial_backoff_secs * 1000),
      maxBackoffMs: request.retry_max_duration_secs * 1000,
    },
  };
}

/** `tls:` of a network sink: TLS client options, as in Vector. */
export const SinkTlsSchema = z
  .strictObject({
    ca_file: FilePath.optional().describe('PEM file of the CA(s) to trust instead of the system store.'),
    crt_file: FilePath.optional().describe('PEM client certificate for mutual TLS (needs key_file).'),
    key_file: FilePath.optional().describe('PEM private key of the client certificate (needs crt_file).'),
    key_pass: secretString()
      .optional()
      .describe('Passphrase of key_file. A secret: write ${KEY_PASS} rather than the passphrase itself.'),
    verify_certificate: z
      .boolean()
      .default(true)
      .describe('Check the server certificate chain. Turn off only for a test server.'),
    verify_hostname: z
      .boolean()
      .default(true)
      .describe('Check that the server certificate names the host. Turn off only for a test server.'),
  })
  .superRefine((tls, ctx) => {
    if (tls.crt_file !== undefined && tls.key_file === undefined) {
      ctx.addIssue({ code: 'custom', path: ['crt_file'], message: 'needs tls.key_file as well' });
    }
    if (tls.key_file !== undefined && tls.crt_file === undefined) {
      ctx.addIssue({ code: 'custom', path: ['key_file'], message: 'needs tls.crt_file as well' });
    }
    if (tls.key_pass !== undefined && tls.key_file === undefined) {
      ctx.addIssue({ code: 'custom', path: ['key_pass'], message: 'is used only with tls.key_file' });
    }
  })
  .describe('TLS client settings for the connection to the destination.');

export type SinkTlsConfig = z.output<typeof SinkTlsSchema>;

/**
 * undici `connect` options for a sink's `tls` (absent: Node's default trust store, full verification).
 * `keyPath` names the config key in errors, e.g. `sinks.siem.tls`.
 */
export async function tlsConnectOptions(
  tls: SinkTlsConfig | undefined,
  keyPath: string,
): Promise<ConnectionOptions> {
  if (!tls) return {};
  const read = async (file: string | undefined, key: string): Promise<Buffer | undefined> => {
    if (file === undefined) return undefined;
    try {
      return await readFile(file);
    } catch (err) {
      throw new OktailError(
        'CONFIG_INVALID',
        `${keyPath}.${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        false,
        { cause: err },
      );
    }
  };
  return {
    ca: await read(tls.ca_file, 'ca_file'),
    cert: await read(tls.crt_file, 'crt_file'),
    key: await read(tls.key_file, 'key_file'),
    passphrase: tls.key_pass,
    rejectUnauthorized: tls.verify_certificate,
    ...(tls.verify_hostname ? {} : { checkServerIdentity: () => undefined }),
  };
}
