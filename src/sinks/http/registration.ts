import * as z from 'zod';
import { HTTP_TOKEN, Inputs, secretString } from '../../config/fields.js';
import type { SinkRegistration } from '../../core/registry.js';
import { batchSchema, requestSchema, SinkTlsSchema } from '../shared/config.js';

const AuthSchema = z
  .discriminatedUnion('strategy', [
    z.strictObject({
      strategy: z.literal('bearer').describe('A bearer token.'),
      token: secretString()
        .min(1, 'must not be empty')
        .describe('Sent as "Authorization: Bearer <token>". A secret: write ${HTTP_TOKEN}.'),
    }),
    z.strictObject({
      strategy: z.literal('basic').describe('HTTP Basic authentication.'),
      user: z.string().min(1, 'must not be empty').describe('User name for HTTP Basic authentication.'),
      password: secretString().describe(
        'Password for HTTP Basic authentication. A secret: write ${HTTP_PASSWORD}.',
      ),
    }),
  ])
  .describe('How requests are authenticated: bearer (token) or basic (user, password).');

export const HttpSinkSchema = z
  .strictObject({
    type: z.literal('http').describe('Sink kind.'),
    inputs: Inputs,
    uri: z
      .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
      .describe('Where batches are POSTed, e.g. https://collector.example.com/ingest.'),
    encoding: z
      .enum(['ndjson', 'json_array'])
      .default('ndjson')
      .describe('Request body: ndjson (one event per line) or json_array ([event,event,...]).'),
    compression: z.enum(['none', 'gzip']).default('none').describe('Request body compression.'),
    headers: z
      .record(
        z.string().regex(HTTP_TOKEN, 'must be an HTTP header name'),
        z.string().regex(/^[^\r\n]*$/, 'must not contain line breaks'),
      )
      .default({})
      .describe('Extra request headers. Do not put secrets here: use auth.'),
    auth: AuthSchema.optional(),
    batch: batchSchema({ max_events: 1000, max_bytes: 5_000_000, timeout_secs: 1 }).prefault({}),
    request: requestSchema({ timeout_secs: 30, concurrency: 2 }).prefault({}),
    tls: SinkTlsSchema.optional(),
  })
  .describe(
    'POSTs batches of events to an HTTP endpoint. At least once: a request accepted just before a crash is sent again.',
  );

export type HttpSinkConfig = z.output<typeof HttpSinkSchema>;

export const httpSink: SinkRegistration<HttpSinkConfig> = {
  type: 'http',
  schema: HttpSinkSchema,
  guarantee: 'at-least-once',
  example: `  # At least once: POSTs batches to an HTTP endpoint; a batch accepted just before a crash is sent again.
  # siem:
  #   type: http
  #   inputs: [okta]
  #   uri: https://collector.example.com/ingest
  #   encoding: ndjson          # ndjson or json_array
  #   compression: gzip         # none or gzip
  #   headers:
  #     X-Source: oktail
  #   auth:
  #     strategy: bearer
  #     token: \${HTTP_TOKEN}
  #   batch:
  #     max_events: 1000
  #     max_bytes: 5000000
  #     timeout_secs: 1
  #   request:
  #     timeout_secs: 30
  #     concurrency: 2
  #     retry_initial_backoff_secs: 1
  #     retry_max_duration_secs: 300
  #   tls:
  #     ca_file: ./collector-ca.pem
  #     crt_file: ./client.pem
  #     key_file: ./client.key
  #     key_pass: \${HTTP_CLIENT_KEY_PASS}
  #     verify_certificate: true
  #     verify_hostname: true
  # The same with HTTP Basic authentication and a JSON array body.
  # siem_basic:
  #   type: http
  #   inputs: [okta]
  #   uri: https://collector.example.com/bulk
  #   encoding: json_array
  #   auth:
  #     strategy: basic
  #     user: oktail
  #     password: \${HTTP_PASSWORD}
`,
  create: async (name, config, context) => {
    // Loaded when a sink is built, so `validate` and the state commands never load the HTTP stack.
    const { createHttpSink } = await import('./http-sink.js');
    return createHttpSink(name, config, context);
  },
};
