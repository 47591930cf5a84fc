import * as z from 'zod';
import { Inputs } from '../../config/fields.js';
import type { SinkRegistration } from '../../core/registry.js';
import {
  batchSchema,
  networkSinkSettings,
  requestSchema,
  SinkTlsSchema,
  tlsConnectOptions,
} from '../shared/config.js';
import { FACILITIES, type Facility } from './frame.js';

/** `host:port`, `1.2.3.4:port` or `[::1]:port`; null when it is none of these. */
export function parseAddress(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65_535) return null;
  return { host: m[1] ?? m[2]!, port };
}

export const SyslogSinkSchema = z
  .strictObject({
    type: z.literal('syslog').describe('Sink kind.'),
    inputs: Inputs,
    address: z
      .string()
      .refine((a) => parseAddress(a) !== null, 'must be host:port, e.g. siem.example.com:6514')
      .describe('The receiver, host:port.'),
    mode: z
      .enum(['tcp', 'tls'], { error: 'must be tcp or tls (udp is not offered: it loses messages silently)' })
      .describe('tcp (RFC 6587) or tls (RFC 5425). Both frame messages by octet counting.'),
    facility: z
      .enum(Object.keys(FACILITIES) as [Facility, ...Facility[]], {
        error: `must be one of ${Object.keys(FACILITIES).join(', ')}`,
      })
      .default('authpriv')
      .describe('Syslog facility of every message.'),
    tls: SinkTlsSchema.optional().describe('TLS client settings for mode tls.'),
    batch: batchSchema({ max_events: 1000, max_bytes: 4_000_000, timeout_secs: 1 }).default({
      max_events: 1000,
      max_bytes: 4_000_000,
      timeout_secs: 1,
    }),
    request: requestSchema({ timeout_secs: 30, concurrency: 1 }).default({
      timeout_secs: 30,
      concurrency: 1,
      retry_initial_backoff_secs: 1,
      retry_max_duration_secs: 300,
    }),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.tls !== undefined && cfg.mode !== 'tls') {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'applies only with mode: tls' });
    }
    if (cfg.request.concurrency !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['request', 'concurrency'],
        message: 'must be 1: messages go over one connection, in order',
      });
    }
  })
  .describe('Sends RFC 5424 messages to a syslog receiver over TCP or TLS. At least once.');

export type SyslogSinkConfig = z.output<typeof SyslogSinkSchema>;

export const syslogSink: SinkRegistration<SyslogSinkConfig> = {
  type: 'syslog',
  schema: SyslogSinkSchema,
  guarantee: 'at-least-once',
  example: `  # At least once: RFC 5424 over TCP or TLS, octet-counted; the receiver must accept large messages.
  # collector:
  #   type: syslog
  #   inputs: [okta]
  #   address: siem.example.com:6514
  #   mode: tls                 # tcp or tls (RFC 5425)
  #   facility: authpriv
  #   tls:
  #     ca_file: ./siem-ca.pem
  #   batch:
  #     max_events: 1000
  #     max_bytes: 4000000
  #     timeout_secs: 1
  #   request:
  #     timeout_secs: 30
  #     concurrency: 1          # one connection, in order
  #     retry_initial_backoff_secs: 1
  #     retry_max_duration_secs: 300
`,
  async create(name, config, context) {
    const { createNetworkSink } = await import('../shared/network-sink.js');
    const { SyslogDriver } = await import('./driver.js');
    const { host, port } = parseAddress(config.address)!;
    const tls = config.mode === 'tls' ? await tlsConnectOptions(config.tls, `sinks.${name}.tls`) : undefined;
    return createNetworkSink({
      name,
      inputs: config.inputs,
      type: 'syslog',
      driver: new SyslogDriver({
        name,
        host,
        port,
        mode: config.mode,
        facility: FACILITIES[config.facility],
        tls,
      }),
      settings: networkSinkSettings(config.batch, config.request),
      telemetry: context.telemetry,
      log: context.log,
    });
  },
};
