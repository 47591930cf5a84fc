import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { AuthSchema, type AuthConfig } from '../sources/okta/auth/schema.js';
import { SINKS } from '../sinks/index.js';
import { FilePath, intBetween } from './fields.js';
import { ProxySchema } from './proxy.js';

/*
 * The configuration contract. Key names follow Vector's okta source so that people moving between the
 * two do not relearn them. Every object is strict: an unknown key is almost always a typo, and a typo
 * must never silently fall back to a default (e.g. a misspelt `verify_hostname` under `tls`).
 *
 * Messages written here start with a lower-case letter ("must be ..."); the loader relies on that to
 * tell them apart from zod's generic wording, and it adds the offending value itself only where that
 * value is safe to show.
 */

/** Names of sources and sinks: they become state keys and metric labels, so keep them plain. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const LOG_FORMATS = ['json', 'pretty'] as const;

// ---------------------------------------------------------------------------------------------------
// host[:port]

export interface HostPort {
  /** Without the brackets of an IPv6 literal. */
  host: string;
  port: number | null;
}

const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function isHostName(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  const labels = host.split('.');
  if (!labels.every((label) => HOST_LABEL.test(label))) return false;
  // All-numeric names that are not IPv4 addresses (e.g. 300.1.1.1) are typos, not host names.
  return !labels.every((label) => /^[0-9]+$/.test(label)) || isIPv4(host);
}

/** Parses `host`, `host:port`, `1.2.3.4:port` or `[::1]:port`; null when it is none of these. */
export function parseHostPort(text: string): HostPort | null {
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::([^:]*))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
    if (!isIPv6(host)) return null;
  } else {
    const parts = text.split(':');
    // More than one colon without brackets is an IPv6 literal whose port cannot be told apart.
    if (parts.length > 2) return null;
    host = parts[0] ?? '';
    portText = parts[1];
    if (!isHostName(host)) return null;
  }
  if (portText === undefined) return { host, port: null };
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  return port <= 65_535 ? { host, port } : null;
}

/** Splits a validated `api.address` for `server.listen`. */
export function parseAddress(address: string): { host: string; port: number } {
  const parsed = parseHostPort(address);
  if (!parsed || parsed.port === null) throw new TypeError('not a host:port address');
  return { host: parsed.host, port: parsed.port };
}

export interface DomainProblem {
  message: string;
  /** The corrected domain, when it can be derived from the value (shown only for literal values). */
  fix?: string;
}

/**
 * Okta's API host is used to build every URL and as the only origin the token may be sent to, so the
 * value must be exactly `host[:port]`. Common mistakes get a specific fix rather than a generic error.
 */
export function checkDomain(value: string): DomainProblem | null {
  if (value === '') return { message: 'must not be empty' };
  if (/\s/.test(value)) {
    const trimmed = value.trim();
    const fix = !/\s/.test(trimmed) && checkDomain(trimmed) === null ? trimmed : undefined;
    return { message: 'must not contain whitespace', ...(fix === undefined ? {} : { fix }) };
  }
  let rest = value;
  const removals: string[] = [];
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(rest);
  if (scheme) {
    removals.push('the scheme');
    rest = rest.slice(scheme[0].length);
  }
  const pathStart = rest.search(/[/?#]/);
  if (pathStart >= 0) {
    removals.push('the path');
    rest = rest.slice(0, pathStart);
  }
  const reasons = removals.length > 0 ? [`remove ${removals.join(' and ')}`] : [];
  if (/-admin\./i.test(rest)) {
    reasons.push("use the org's API host, not the -admin. console host");
    rest = rest.replace(/-admin\./i, '.');
  }
  if (reasons.length > 0) {
    const fix = parseHostPort(rest) ? rest : undefined;
    return { message: reasons.join('; '), ...(fix === undefined ? {} : { fix }) };
  }
  if (!parseHostPort(value)) {
    return {
      message:
        'must be a host name or IP address with an optional port, e.g. company.okta.com or 127.0.0.1:8443',
    };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------
// start_from

const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/;

/** ISO 8601 date-time with seconds and a timezone; fractions optional. Rejects dates that do not exist. */
export function isIsoDateTime(value: string): boolean {
  const m = ISO_DATE_TIME.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const offsetHour = m[7] === undefined ? 0 : Number(m[7]);
  const offsetMinute = m[8] === undefined ? 0 : Number(m[8]);
  // Date.parse rolls 2025-02-30 over into March; check the calendar explicitly.
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return (
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    offsetHour <= 23 &&
    offsetMinute <= 59 &&
    !Number.isNaN(Date.parse(value))
  );
}

// ---------------------------------------------------------------------------------------------------
// Building blocks

const Name = z
  .string()
  .regex(NAME_PATTERN, 'must be 1 to 64 letters, digits, _ or -')
  .describe('A name of 1 to 64 letters, digits, _ or -.');

export const LogSchema = z
  .strictObject({
    level: z
      .enum(LOG_LEVELS)
      .default('info')
      .describe("Minimum level of the collector's own log lines (written to stderr)."),
    format: z
      .enum(LOG_FORMATS)
      .optional()
      .describe('json or pretty. When absent: pretty on a terminal, json otherwise.'),
  })
  .describe("The collector's own logging.");

export const ApiSchema = z
  .strictObject({
    address: z
      .string()
      .superRefine((value, ctx) => {
        const parsed = parseHostPort(value);
        if (!parsed || parsed.port === null) {
          ctx.addIssue({
            code: 'custom',
            message: 'must be host:port, e.g. 127.0.0.1:9598 or [::1]:9598',
          });
        }
      })
      .describe(
        'host:port to listen on for health and metrics, e.g. 127.0.0.1:9598. Port 0 picks a free port.',
      ),
  })
  .describe('HTTP endpoint for health checks and Prometheus metrics. Absent: no endpoint.');

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

export { AuthSchema };

const TLS_OPTION_KEYS = [
  'ca_file',
  'crt_file',
  'key_file',
  'key_pass',
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

export const SourceSchema = z.discriminatedUnion('type', [OktaSourceSchema]);

/** Every sink type's config, from the registry list in src/sinks/index.ts. */
export type SinkConfig = z.output<(typeof SINKS)[number]['schema']>;

// The registry's schemas are typed by their output only; the union is built from the list at runtime.
export const SinkSchema = z.discriminatedUnion(
  'type',
  SINKS.map((s) => s.schema) as unknown as [z.ZodObject, ...z.ZodObject[]],
) as unknown as z.ZodType<SinkConfig, unknown>;

export const ConfigSchema = z
  .strictObject({
    data_dir: FilePath.default('./.oktail').describe(
      'Directory for checkpoints and state. Relative to the config file.',
    ),
    log: LogSchema.prefault({}),
    api: ApiSchema.optional(),
    proxy: ProxySchema.optional(),
    sources: z
      .record(Name, SourceSchema)
      .refine((sources) => Object.keys(sources).length > 0, 'must define at least one source')
      .describe('Orgs to collect from, by name. Several sources are several orgs with separate state.'),
    sinks: z
      .record(Name, SinkSchema)
      .refine((sinks) => Object.keys(sinks).length > 0, 'must define at least one sink')
      .describe('Where events go, by name.'),
  })
  .describe('oktail configuration.');

export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogConfig = z.output<typeof LogSchema>;
export type ApiConfig = z.output<typeof ApiSchema>;
export type { AuthConfig };
export type TlsConfig = z.output<typeof TlsSchema>;
export type RateLimitConfig = z.output<typeof RateLimitSchema>;
export type RetryConfig = z.output<typeof RetrySchema>;
export type OktaSourceConfig = z.output<typeof OktaSourceSchema>;
export type SourceConfig = z.output<typeof SourceSchema>;
/** The validated configuration: defaults filled in, relative paths resolved against the config file. */
export type Config = z.output<typeof ConfigSchema>;
/** What a config file may contain (before defaults). */
export type ConfigInput = z.input<typeof ConfigSchema>;

/**
 * JSON Schema of the config file for editors (yaml-language-server etc.). It describes the input side:
 * optional keys with their defaults. Cross-field rules (unknown inputs, duplicate paths) are not expressible
 * there and are checked only by the loader.
 */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ConfigSchema, { io: 'input', target: 'draft-2020-12' }),
    title: 'oktail configuration',
  };
}
