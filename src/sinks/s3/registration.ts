import * as z from 'zod';
import { Inputs, intBetween, secretString } from '../../config/fields.js';
import type { SinkRegistration } from '../../core/registry.js';
import { networkSinkSettings, requestSchema } from '../shared/config.js';
import { unknownPrefixFields } from './key.js';

/**
 * zlib's levels 1-3 use its fast strategy. On Okta events level 3 shrinks about 8.8x for about 10 µs of CPU
 * per event, level 6 (zlib's default) about 10.9x for about 20 µs, nearly what the rest of the
 * collector spends on an event: objects a quarter larger are the cheaper side of that trade for a log lake.
 */
const DEFAULT_GZIP_LEVEL = 3;

const S3BatchSchema = z
  .strictObject({
    max_events: intBetween(1, 100_000).default(100_000).describe('Most events in one object.'),
    max_bytes: intBetween(1024, 1_000_000_000)
      .default(50_000_000)
      .describe(
        'Most bytes of events in one object (before compression). Held in memory until written: compressed with gzip, as they are without.',
      ),
    timeout_secs: z
      .number({ error: 'must be a number of seconds' })
      .min(0, 'must be 0 (one object per page) or more')
      .max(3600, 'must be at most 3600 (an hour): held pages are not committed until their object is stored')
      .default(300)
      .describe(
        'Most seconds the first page of an object waits for more before the object is written; 0 = one object per page.',
      ),
  })
  .describe('When an object is written: whichever limit a page would pass first, or the timeout.');

export const S3SinkSchema = z
  .strictObject({
    type: z.literal('s3').describe('Sink kind.'),
    inputs: Inputs,
    bucket: z.string().min(3, 'must be a bucket name').describe('Bucket to write objects to.'),
    region: z.string().min(1, 'must not be empty').describe("The bucket's region, e.g. us-east-1."),
    endpoint: z
      .url({ error: 'must be a URL such as http://minio.example.com:9000' })
      .optional()
      .describe('Endpoint of an S3-compatible store; absent = AWS.'),
    force_path_style: z
      .boolean()
      .default(false)
      .describe('Address the bucket in the path instead of the host name (most S3-compatible stores).'),
    key_prefix: z
      .string()
      .default('okta/%Y/%m/%d/')
      .superRefine((prefix, ctx) => {
        const bad = unknownPrefixFields(prefix);
        if (bad.length > 0) {
          ctx.addIssue({
            code: 'custom',
            message: `has unknown fields ${bad.join(', ')}; use %Y %m %d %H %M %S %j or %% for a literal %`,
          });
        }
      })
      .describe("Key prefix; strftime fields from the first event's published (UTC)."),
    compression: z
      .enum(['gzip', 'none'], { error: 'must be gzip or none' })
      .default('gzip')
      .describe('gzip: objects end in .ndjson.gz.'),
    compression_level: intBetween(1, 9)
      .default(DEFAULT_GZIP_LEVEL)
      .describe(
        "gzip level, 1 (fastest) to 9 (smallest). The default 3 is the best of zlib's fast levels: " +
          "Okta's events shrink about 8.8x for half of level 6's CPU (about 10.9x).",
      ),
    batch: S3BatchSchema.default({ max_events: 100_000, max_bytes: 50_000_000, timeout_secs: 300 }),
    request: requestSchema({ timeout_secs: 120, concurrency: 4 }).default({
      timeout_secs: 120,
      concurrency: 4,
      retry_initial_backoff_secs: 1,
      retry_max_duration_secs: 300,
    }),
    auth: z
      .strictObject({
        access_key_id: secretString().describe('Access key id.'),
        secret_access_key: secretString().describe('Secret access key. A secret.'),
        session_token: secretString().optional().describe('Session token of temporary credentials.'),
      })
      .optional()
      .describe('Static credentials; absent = the AWS default chain (environment, profile, role).'),
  })
  .describe(
    'Writes NDJSON objects (gzip by default) of consecutive pages to S3. Exactly once, see docs/sinks.md.',
  );

export type S3SinkConfig = z.output<typeof S3SinkSchema>;

export const s3Sink: SinkRegistration<S3SinkConfig> = {
  type: 's3',
  schema: S3SinkSchema,
  guarantee: 'exactly-once',
  example: `  # Exactly once: NDJSON objects of consecutive pages, named after their first event, so a replay
  # overwrites them. The checkpoint moves when an object is stored.
  # lake:
  #   type: s3
  #   inputs: [okta]
  #   bucket: security-logs
  #   region: us-east-1
  #   endpoint: http://minio.example.com:9000   # S3-compatible stores only
  #   force_path_style: true
  #   key_prefix: okta/%Y/%m/%d/
  #   compression: gzip         # gzip or none
  #   compression_level: 3      # 1 (fastest) to 9 (smallest)
  #   batch:
  #     max_events: 100000
  #     max_bytes: 50000000
  #     timeout_secs: 300
  #   request:
  #     timeout_secs: 120
  #     concurrency: 4
  #     retry_initial_backoff_secs: 1
  #     retry_max_duration_secs: 300
  #   auth:                     # absent: the AWS default credential chain
  #     access_key_id: \${AWS_ACCESS_KEY_ID}
  #     secret_access_key: \${AWS_SECRET_ACCESS_KEY}
  #     session_token: \${AWS_SESSION_TOKEN}
`,
  async create(name, config, context) {
    const { S3Driver } = await import('./driver.js');
    const { S3Sink } = await import('./s3-sink.js');
    const driver = new S3Driver({
      name,
      bucket: config.bucket,
      region: config.region,
      endpoint: config.endpoint,
      forcePathStyle: config.force_path_style,
      keyPrefix: config.key_prefix,
      compression: config.compression,
      compressionLevel: config.compression_level,
      credentials: config.auth && {
        accessKeyId: config.auth.access_key_id,
        secretAccessKey: config.auth.secret_access_key,
        sessionToken: config.auth.session_token,
      },
    });
    return new S3Sink({
      name,
      inputs: config.inputs,
      type: 's3',
      driver,
      compression: config.compression,
      compressionLevel: config.compression_level,
      settings: networkSinkSettings({ ...config.batch, timeout_secs: 0 }, config.request),
      holdMs: Math.round(config.batch.timeout_secs * 1000),
      telemetry: context.telemetry,
      log: context.log,
    });
  },
};
