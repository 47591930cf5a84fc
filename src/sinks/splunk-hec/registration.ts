import * as z from 'zod';
import { VERSION } from '../../core/version.js';
import { Inputs, intBetween, secretString } from '../../config/fields.js';
import type { SinkRegistration } from '../../core/registry.js';
import {
  SinkTlsSchema,
  batchSchema,
  networkSinkSettings,
  requestSchema,
  tlsConnectOptions,
} from '../shared/config.js';

/** The sourcetype of Splunk's Okta Identity Cloud add-on, so its field extractions and dashboards apply. */
export const OKTA_SOURCETYPE = 'OktaIM2:log';

/** An http(s) base URL without credentials, query or fragment. */
export const HttpBaseUrl = z.string().superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a URL such as https://splunk.example.com:8088' });
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    ctx.addIssue({ code: 'custom', message: 'must start with https:// (or http://)' });
  } else if (url.username !== '' || url.password !== '') {
    ctx.addIssue({ code: 'custom', message: 'must not hold credentials: use the token or auth keys' });
  } else if (url.search !== '' || url.hash !== '') {
    ctx.addIssue({ code: 'custom', message: 'must not have a query or fragment' });
  }
});

export const SplunkHecSinkSchema = z
  .strictObject({
    type: z.literal('splunk_hec').describe('Sink kind.'),
    inputs: Inputs,
    endpoint: HttpBaseUrl.describe(
      'Base URL of the HTTP Event Collector, e.g. https://splunk.example.com:8088 (oktail adds /services/collector/event).',
    ),
    token: secretString()
      .min(1, 'must not be empty')
      .describe('HEC token. A secret: write ${HEC_TOKEN} rather than the token itself.'),
    index: z
      .string()
      .min(1, 'must not be empty')
      .optional()
      .describe("Splunk index; absent: the token's default."),
    source: z
      .string()
      .min(1, 'must not be empty')
      .optional()
      .describe('`source` of every event; absent: the name of the oktail source the event came from.'),
    sourcetype: z
      .string()
      .min(1, 'must not be empty')
      .default(OKTA_SOURCETYPE)
      .describe("`sourcetype` of every event; the default is the one Splunk's Okta add-on reads."),
    acknowledgements: z
      .boolean()
      .default(true)
      .describe('Use indexer acknowledgement: a batch counts as delivered only once Splunk indexed it.'),
    ack_timeout_secs: intBetween(1, 86_400)
      .default(300)
      .describe(
        'An ack not reported within this is taken as lost (e.g. an indexer restart): the batch is resent.',
      ),
    ack_poll_interval_ms: intBetween(10, 60_000)
      .default(1000)
      .describe('Pause between two polls of /services/collector/ack.'),
    // No wait for more events by default: a batch timeout only lets pages of several sources share a
    // request, and the helper already sends at once when every source feeding the sink waits.
    batch: batchSchema({ max_events: 1000, max_bytes: 1_000_000, timeout_secs: 0 }).prefault({}),
    request: requestSchema({ timeout_secs: 60, concurrency: 2 }).prefault({}),
    tls: SinkTlsSchema.optional(),
  })
  .describe(
    "Sends events to Splunk's HTTP Event Collector. At least once, gated by indexer acknowledgement.",
  );

export type SplunkHecSinkConfig = z.output<typeof SplunkHecSinkSchema>;

export const splunkHecSink: SinkRegistration<SplunkHecSinkConfig> = {
  type: 'splunk_hec',
  schema: SplunkHecSinkSchema,
  guarantee: 'at-least-once',
  example: `  # At least once, gated by Splunk's indexer acknowledgement (docs/sinks.md).
  # splunk:
  #   type: splunk_hec
  #   inputs: [okta]
  #   endpoint: https://splunk.example.com:8088
  #   token: \${HEC_TOKEN}
  #   index: okta
  #   source: oktail
  #   sourcetype: "OktaIM2:log"
  #   acknowledgements: true
  #   ack_timeout_secs: 300
  #   ack_poll_interval_ms: 1000
  #   batch:
  #     max_events: 1000
  #     max_bytes: 1000000
  #     timeout_secs: 0
  #   request:
  #     timeout_secs: 60
  #     concurrency: 2
  #     retry_initial_backoff_secs: 1
  #     retry_max_duration_secs: 300
  #   tls:
  #     ca_file: ./splunk-ca.pem
  #     crt_file: ./client.pem
  #     key_file: ./client.key
  #     key_pass: \${HEC_CLIENT_KEY_PASS}
  #     verify_certificate: true
  #     verify_hostname: true
`,
  create: async (name, config, context) => {
    const { createNetworkSink } = await import('../shared/network-sink.js');
    const { HecDriver } = await import('./driver.js');
    const settings = networkSinkSettings(config.batch, config.request);
    const requestTimeoutMs = settings.request.timeoutMs;
    // The helper's request timeout covers the whole send, and with acknowledgements that includes the
    // wait for the ack, which ack_timeout_secs bounds; request.timeout_secs limits each HTTP request.
    if (config.acknowledgements) {
      settings.request.timeoutMs =
        requestTimeoutMs + config.ack_timeout_secs * 1000 + config.ack_poll_interval_ms;
    }
    const driver = new HecDriver({
      endpoint: new URL(config.endpoint),
      token: config.token,
      fields: { source: config.source ?? null, sourcetype: config.sourcetype, index: config.index ?? null },
      acknowledgements: config.acknowledgements,
      ackTimeoutMs: config.ack_timeout_secs * 1000,
      ackPollIntervalMs: config.ack_poll_interval_ms,
      requestTimeoutMs,
      connect: await tlsConnectOptions(config.tls, `sinks.${name}.tls`),
      userAgent: `oktail/${VERSION}`,
    });
    return createNetworkSink({
      name,
      inputs: config.inputs,
      type: 'splunk_hec',
      driver,
      settings,
      telemetry: context.telemetry,
      log: context.log,
    });
  },
};
