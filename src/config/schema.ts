import * as z from 'zod';
import { SINKS } from '../sinks/index.js';
import { SOURCES } from '../sources/index.js';
import { FilePath, intBetween, secretString } from './fields.js';
import { ProxySchema } from './proxy.js';
import { parseHostPort } from './values.js';

export {
  checkDomain,
  isIsoDateTime,
  parseAddress,
  parseHostPort,
  type DomainProblem,
  type HostPort,
} from './values.js';
export {
  AuthSchema,
  OktaSourceSchema,
  RateLimitSchema,
  RetrySchema,
  TlsSchema,
  type AuthConfig,
  type OktaSourceConfig,
  type RateLimitConfig,
  type RetryConfig,
  type TlsConfig,
} from '../sources/okta/config.js';

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

export const STATE_BACKENDS = ['file', 'postgres'] as const;

export const FileStateSchema = z
  .strictObject({
    backend: z
      .literal('file')
      .describe('The checkpoint is data_dir/state.json, guarded by a host-local lock.'),
  })
  .describe('One collector per data_dir (the default).');

export const PostgresStateSchema = z
  .strictObject({
    backend: z
      .literal('postgres')
      .describe('Checkpoints and leases in PostgreSQL, shared by any number of replicas.'),
    url: secretString()
      .refine((u) => /^postgres(ql)?:\/\//.test(u), 'must be a postgres:// or postgresql:// URL')
      .describe(
        'Connection URL, e.g. postgres://oktail:${PG_PASSWORD}@db.example.com:5432/oktail. A secret (it ' +
          'holds the password): redacted everywhere. oktail creates and migrates its tables there.',
      ),
    lease_secs: intBetween(3, 600)
      .default(15)
      .describe(
        "How long a replica's hold on a source lasts without renewal; a replica that stops renewing loses " +
          'its sources to the others after this.',
      ),
    node_id: z
      .string()
      .regex(/^[A-Za-z0-9._:@-]{1,128}$/, 'must be 1 to 128 letters, digits, or . _ : @ -')
      .optional()
      .describe("This replica's name in leases and `cluster status`. Default: hostname and process id."),
  })
  .describe('Several replicas share the sources through leases with fencing tokens in PostgreSQL.');

export const StateSchema = z
  .discriminatedUnion('backend', [FileStateSchema, PostgresStateSchema])
  .describe('Where checkpoints live: a local file (default) or PostgreSQL for several replicas.');

export type StateConfig = z.output<typeof StateSchema>;
export type PostgresStateConfig = z.output<typeof PostgresStateSchema>;

/** Every source type's config, from the registry list in src/sources/index.ts. */
export type SourceConfig = z.output<(typeof SOURCES)[number]['schema']>;

export const SourceSchema = z.discriminatedUnion(
  'type',
  SOURCES.map((s) => s.schema) as unknown as [z.ZodObject, ...z.ZodObject[]],
) as unknown as z.ZodType<SourceConfig, unknown>;

/** Every sink type's config, from the registry list in src/sinks/index.ts. */
export type SinkConfig = z.output<(typeof SINKS)[number]['schema']>;

// The registry's schemas are typed by their output only; the union is built from the list at runtime.
export const SinkSchema = z.discriminatedUnion(
  'type',
  SINKS.map((s) => s.schema) as unknown as [z.ZodObject, ...z.ZodObject[]],
) as unknown as z.ZodType<SinkConfig, unknown>;

export const ConsoleSchema = z
  .strictObject({
    address: z
      .string()
      .default('127.0.0.1:8686')
      .superRefine((value, ctx) => {
        const parsed = parseHostPort(value);
        if (!parsed || parsed.port === null) {
          ctx.addIssue({
            code: 'custom',
            message: 'must be host:port, e.g. 127.0.0.1:8686 or [::1]:8686',
          });
        }
      })
      .describe(
        'host:port the web console listens on (default 127.0.0.1:8686). Any address but loopback needs tls.',
      ),
    tls: z
      .strictObject({
        crt_file: FilePath.describe('PEM certificate the console serves. Relative to the config file.'),
        key_file: FilePath.describe('PEM private key of crt_file. Relative to the config file.'),
      })
      .optional()
      .describe('HTTPS for the console; required to listen on an address other than loopback.'),
  })
  // Over plain HTTP on a network the session cookie and the sign-in token could be read off the wire.
  .superRefine((console, ctx) => {
    const parsed = parseHostPort(console.address);
    if (parsed && parsed.port !== null && console.tls === undefined && !isLoopbackHost(parsed.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls'],
        message: `is required to listen on ${console.address}, which is not a loopback address: set console.tls.crt_file and console.tls.key_file, or use 127.0.0.1`,
      });
    }
  })
  .describe('The web console: sources added, tested and watched in a browser. Absent: no console.');

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export const ConfigSchema = z
  .strictObject({
    data_dir: FilePath.default('./.oktail').describe(
      'Directory for checkpoints and state. Relative to the config file.',
    ),
    state: StateSchema.optional(),
    log: LogSchema.prefault({}),
    api: ApiSchema.optional(),
    console: ConsoleSchema.optional(),
    proxy: ProxySchema.optional(),
    sources: z
      .record(Name, SourceSchema)
      .describe(
        'Orgs to collect from, by name. Several sources are several orgs with separate state. May be empty ({}) only with a console block.',
      ),
    sinks: z
      .record(Name, SinkSchema)
      .refine((sinks) => Object.keys(sinks).length > 0, 'must define at least one sink')
      .describe('Where events go, by name.'),
  })
  // With a console, a fresh install starts with sinks only: its sources are added in the browser.
  .superRefine((config, ctx) => {
    if (config.console !== undefined) return;
    if (Object.keys(config.sources).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['sources'], message: 'must define at least one source' });
    }
    for (const [name, sink] of Object.entries(config.sinks)) {
      if (sink.inputs.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['sinks', name, 'inputs'],
          message: 'must list at least one source',
        });
      }
    }
  })
  .describe('oktail configuration.');

export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogConfig = z.output<typeof LogSchema>;
export type ApiConfig = z.output<typeof ApiSchema>;
export type ConsoleConfig = z.output<typeof ConsoleSchema>;
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
