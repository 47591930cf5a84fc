import * as z from 'zod';
import { FilePath, intBetween } from '../../config/fields.js';
import { ProxySchema } from '../../config/proxy.js';
import { AuthSchema } from './auth/schema.js';
import { checkDomain, isIsoDateTime } from '../../config/values.js';

/*
 * The okta source's configuration. Key names follow Vector's okta source so that people moving between
 * the two do not relearn them. Every object is strict: a typo must never silently fall back to a default.
 */

const DomainSchema = z
  .string()
  .superRefine((value, ctx) => {
    const problem = checkDomain(value);
    if (problem) {
      ctx.addIssue({
        code: 'custom',
        message: problem.message,
        ...(problem.fix === undefined ? {} : { params: { fix: problem.fix } }),
      });
    }
  })
  .describe(
    "The org's API host, host[:port] without scheme or path, e.g. company.okta.com (not the -admin. host). Custom URL domains and IP addresses work too.",
  );

const StartFromSchema = z
  .string()
  .nullable()
  .optional()
  .superRefine((value, ctx) => {
    if (value && !isIsoDateTime(value)) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be an ISO 8601 date-time with a timezone, e.g. 2025-01-15T08:30:00.000Z',
      });
    }
  })
  // One canonical form (UTC, milliseconds) because collection logic compares it with events' `published`.
  .transform((value) => (value ? new Date(value).toISOString() : null))
  .describe(
    'Where the first cycle starts when no checkpoint exists: an ISO 8601 date-time with a timezone, e.g. 2025-01-15T08:30:00.000Z. Absent or empty: now. Ignored once a checkpoint exists.',
  );

// The auth block (API token or OAuth 2.0 service app) lives beside the OAuth provider that reads it.
export { AuthSchema, type AuthConfig } from './auth/schema.js';

const TLS_OPTION_KEYS = [
  'ca_file',
  'crt_file',
  'key_file',
  'key_pass',
  'key_pass_file',
  'verify_certificate',
  'verify_hostname',
] as const;

export const TlsSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .optional()
      .describe(
        'true applies the settings below; false (default) means standard HTTPS with the system trust store.',
      ),
    ca_file: FilePath.optional().describe(
      'PEM file of the CA(s) to trust instead of the system store. Relative to the config file.',
    ),
    crt_file: FilePath.optional().describe(
      'PEM client certificate for mutual TLS (needs key_file). Relative to the config file.',
    ),
    key_file: FilePath.optional().describe(
      'PEM private key of the client certificate (needs crt_file). Relative to the config file.',
    ),
    key_pass: z
      .string()
      .meta({ secret: true })
      .optional()
      .describe('Passphrase of key_file. A secret: write ${KEY_PASS} rather than the passphrase itself.'),
    key_pass_file: FilePath.optional().describe(
      'A file holding the passphrase of key_file instead of key_pass (the web console writes one, mode 0600, in data_dir). Relative to the config file.',
    ),
    verify_certificate: z
      .boolean()
      .optional()
      .meta({ default: true })
      .describe('Check the server certificate chain (default true). Turn off only for a local emulator.'),
    verify_hostname: z
      .boolean()
      .optional()
      .meta({ default: true })
      .describe(
        'Check that the server certificate names the domain (default true). Turn off only for a local emulator.',
      ),
  })
  // Defaults are filled in after this check so it can tell what was actually written.
  .superRefine((tls, ctx) => {
    if (tls.enabled === undefined) {
      // Settings written without `enabled` would otherwise be ignored without a word.
      const written = TLS_OPTION_KEYS.filter((key) => tls[key] !== undefined);
      if (written.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['enabled'],
          message: `must be set: true to use ${written.join(', ')}, or false to ignore ${written.length > 1 ? 'them' : 'it'}`,
        });
      }
      return;
    }
    if (!tls.enabled) return;
    if (tls.crt_file !== undefined && tls.key_file === undefined) {
      ctx.addIssue({ code: 'custom', path: ['crt_file'], message: 'needs tls.key_file as well' });
    }
    if (tls.key_file !== undefined && tls.crt_file === undefined) {
      ctx.addIssue({ code: 'custom', path: ['key_file'], message: 'needs tls.crt_file as well' });
    }
    if (tls.key_pass !== undefined && tls.key_file === undefined) {
      ctx.addIssue({ code: 'custom', path: ['key_pass'], message: 'is used only with tls.key_file' });
    }
    if (tls.key_pass_file !== undefined && tls.key_file === undefined) {
      ctx.addIssue({ code: 'custom', path: ['key_pass_file'], message: 'is used only with tls.key_file' });
    }
    if (tls.key_pass_file !== undefined && tls.key_pass !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['key_pass_file'],
        message: 'cannot be set together with tls.key_pass',
      });
    }
  })
  .transform((tls) => ({
    ...tls,
    enabled: tls.enabled ?? false,
    verify_certificate: tls.verify_certificate ?? true,
    verify_hostname: tls.verify_hostname ?? true,
  }))
  .describe('TLS settings for the connection to the org.');

export const RateLimitSchema = z
  .strictObject({
    max_share: z
      .number()
      .gt(0, 'must be greater than 0 and at most 1')
      .lte(1, 'must be greater than 0 and at most 1')
      .default(0.5)
      .describe(
        'Fraction (0 < x <= 1) of X-Rate-Limit-Limit this collector may use per window; other integrations share the bucket.',
      ),
    min_remaining: z
      .int()
      .min(0, 'must be 0 or more')
      .default(2)
      .describe('Requests always left in the bucket for other integrations.'),
  })
  .describe("How much of the org's /api/v1/logs rate limit this collector may use.");

export const RetrySchema = z
  .strictObject({
    initial_backoff_ms: intBetween(10, 60_000)
      .default(1000)
      .describe('First wait after a failed request, in milliseconds; it doubles on each retry.'),
    max_backoff_secs: intBetween(1, 3600).default(300).describe('Longest wait between retries, in seconds.'),
  })
  .superRefine((retry, ctx) => {
    // Refinements also run after range errors; only compare values that are valid on their own.
    const inRange =
      retry.initial_backoff_ms <= 60_000 && retry.max_backoff_secs >= 1 && retry.max_backoff_secs <= 3600;
    if (inRange && retry.initial_backoff_ms > retry.max_backoff_secs * 1000) {
      ctx.addIssue({
        code: 'custom',
        path: ['initial_backoff_ms'],
        message: 'must not be longer than retry.max_backoff_secs',
      });
    }
  })
  .describe('Backoff for failed requests.');

export const OktaSourceSchema = z
  .strictObject({
    type: z.literal('okta').describe('Source kind.'),
    enabled: z
      .boolean()
      .optional()
      .meta({ default: true })
      .describe(
        'false: the source is kept in the config (and its checkpoint kept) but not collected. The console sets it with Disable.',
      ),
    domain: DomainSchema,
    interval_secs: intBetween(10, 86_401)
      .default(120)
      .describe('Seconds between the starts of two collection cycles.'),
    start_from: StartFromSchema,
    script: FilePath.optional()
      .transform((value) => value ?? null)
      .describe('Lua collection script to use instead of the built-in one. Relative to the config file.'),
    auth: AuthSchema,
    tls: TlsSchema.prefault({}),
    proxy: ProxySchema.optional().describe(
      'This source\'s proxy, replacing the global proxy block (url: "" = direct).',
    ),
    rate_limit: RateLimitSchema.prefault({}),
    retry: RetrySchema.prefault({}),
    request_timeout_secs: intBetween(5, 600).default(60).describe('Time limit for one request, in seconds.'),
  })
  .describe('An Okta org whose System Log is collected. Each source keeps its own state.');

export type TlsConfig = z.output<typeof TlsSchema>;
export type RateLimitConfig = z.output<typeof RateLimitSchema>;
export type RetryConfig = z.output<typeof RetrySchema>;
export type OktaSourceConfig = z.output<typeof OktaSourceSchema>;
