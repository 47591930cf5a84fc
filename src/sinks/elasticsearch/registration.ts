import * as z from 'zod';
import { VERSION } from '../../core/version.js';
import { Inputs, secretString } from '../../config/fields.js';
import type { SinkRegistration } from '../../core/registry.js';
import {
  SinkTlsSchema,
  batchSchema,
  networkSinkSettings,
  requestSchema,
  tlsConnectOptions,
} from '../shared/config.js';
import { HttpBaseUrl } from '../splunk-hec/registration.js';
import { compileIndexTemplate, indexTemplateProblem } from './framing.js';

const AuthSchema = z
  .discriminatedUnion('strategy', [
    z.strictObject({
      strategy: z.literal('basic').describe('HTTP Basic authentication with a user and password.'),
      user: z.string().min(1, 'must not be empty').describe('User name.'),
      password: secretString().describe('Password. A secret: write ${ES_PASSWORD}.'),
    }),
    z.strictObject({
      strategy: z.literal('api_key').describe('An Elasticsearch API key.'),
      api_key: secretString()
        .min(1, 'must not be empty')
        .describe('The `encoded` value of an API key (sent as `Authorization: ApiKey ...`). A secret.'),
    }),
  ])
  .describe('How oktail authenticates: basic (user, password) or api_key.');

export const ElasticsearchSinkSchema = z
  .strictObject({
    type: z.literal('elasticsearch').describe('Sink kind.'),
    inputs: Inputs,
    endpoints: z
      .array(HttpBaseUrl)
      .min(1, 'must list at least one endpoint')
      .describe('Base URLs of nodes, e.g. https://es.example.com:9200; requests go to them in turn.'),
    api_version: z
      .enum(['elasticsearch', 'opensearch'])
      .default('elasticsearch')
      .describe('elasticsearch (7.14 or newer, checked by its X-Elastic-Product header) or opensearch.'),
    index: z
      .string()
      .default('okta-logs-%Y.%m.%d')
      .superRefine((template, ctx) => {
        const problem = indexTemplateProblem(template);
        if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
      })
      .describe("Index name; %Y, %m, %d, %H, %j, %G, %V are taken from each event's published time (UTC)."),
    auth: AuthSchema.optional(),
    // No wait for more events by default: a batch timeout only lets pages of several sources share a
    // request, and the helper already sends at once when every source feeding the sink waits.
    batch: batchSchema({ max_events: 1000, max_bytes: 10_000_000, timeout_secs: 0 }).prefault({}),
    request: requestSchema({ timeout_secs: 60, concurrency: 2 }).prefault({}),
    tls: SinkTlsSchema.optional(),
  })
  .describe(
    'Indexes events into Elasticsearch or OpenSearch with _bulk create. Exactly once, by _id = uuid.',
  );

export type ElasticsearchSinkConfig = z.output<typeof ElasticsearchSinkSchema>;

export const elasticsearchSink: SinkRegistration<ElasticsearchSinkConfig> = {
  type: 'elasticsearch',
  schema: ElasticsearchSinkSchema,
  guarantee: 'exactly-once',
  example: `  # Exactly once: a _bulk create per event with _id = its uuid (docs/sinks.md).
  # elastic:
  #   type: elasticsearch
  #   inputs: [okta]
  #   endpoints: [https://es.example.com:9200]
  #   api_version: elasticsearch   # or opensearch
  #   index: okta-logs-%Y.%m.%d
  #   auth:
  #     strategy: basic
  #     user: oktail
  #     password: \${ES_PASSWORD}
  # The same for OpenSearch, with an API key instead of a password.
  # opensearch:
  #   type: elasticsearch
  #   inputs: [okta]
  #   endpoints: [https://os.example.com:9200]
  #   api_version: opensearch
  #   auth:
  #     strategy: api_key
  #     api_key: \${ES_API_KEY}
`,
  create: async (name, config, context) => {
    const { createNetworkSink } = await import('../shared/network-sink.js');
    const { ElasticsearchDriver } = await import('./driver.js');
    const auth = config.auth;
    const authorization =
      auth === undefined
        ? null
        : auth.strategy === 'basic'
          ? `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`
          : `ApiKey ${auth.api_key}`;
    const driver = new ElasticsearchDriver({
      endpoints: config.endpoints.map((e) => new URL(e)),
      apiVersion: config.api_version,
      index: compileIndexTemplate(config.index),
      authorization,
      connect: await tlsConnectOptions(config.tls, `sinks.${name}.tls`),
      userAgent: `oktail/${VERSION}`,
    });
    return createNetworkSink({
      name,
      inputs: config.inputs,
      type: 'elasticsearch',
      driver,
      settings: networkSinkSettings(config.batch, config.request),
      telemetry: context.telemetry,
      log: context.log,
    });
  },
};
