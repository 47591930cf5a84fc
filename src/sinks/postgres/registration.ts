import * as z from 'zod';
import { Inputs, secretString } from '../../config/fields.js';
import type { StoreTransaction } from '../../core/checkpoint.js';
import { OktailError } from '../../core/errors.js';
import type { SinkRegistration } from '../../core/registry.js';
import type { EventBatch } from '../../core/sink.js';
import {
  batchSchema,
  networkSinkSettings,
  requestSchema,
  SinkTlsSchema,
  tlsConnectOptions,
} from '../shared/config.js';

// Plain or schema-qualified identifiers only: the name is quoted in SQL, but a dot or a quote in it is
// almost always a mistake rather than a table someone really named that way.
const TABLE = /^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$/;

export const PostgresSinkSchema = z
  .strictObject({
    type: z.literal('postgres').describe('Sink kind.'),
    inputs: Inputs,
    url: secretString()
      .refine((u) => /^postgres(ql)?:\/\//.test(u), 'must be a postgres:// or postgresql:// URL')
      .describe(
        'Connection URL, e.g. postgres://oktail:${PG_PASSWORD}@db.example.com:5432/security. A secret ' +
          '(it holds the password): redacted everywhere.',
      ),
    table: z
      .string()
      .regex(TABLE, 'must be a table name such as okta_events or security.okta_events')
      .default('okta_events')
      .describe('Table to insert into; created with the documented columns when absent.'),
    tls: SinkTlsSchema.optional().describe(
      'TLS to the server. Present: TLS is required and verified as set here (verify-full by default). ' +
        "Absent: the URL's sslmode decides.",
    ),
    // Half an Okta page per request: with two connections, the server turns both halves into rows at
    // once, on two cores, while one page in one transaction keeps one backend busy and the others idle.
    batch: batchSchema({ max_events: 500, max_bytes: 10_000_000, timeout_secs: 1 }).default({
      max_events: 500,
      max_bytes: 10_000_000,
      timeout_secs: 1,
    }),
    request: requestSchema({ timeout_secs: 60, concurrency: 2 }).default({
      timeout_secs: 60,
      concurrency: 2,
      retry_initial_backoff_secs: 1,
      retry_max_duration_secs: 300,
    }),
  })
  .describe(
    'Inserts events into a PostgreSQL table, one transaction per request, ON CONFLICT (uuid) DO NOTHING. ' +
      'Exactly once.',
  );

export type PostgresSinkConfig = z.output<typeof PostgresSinkSchema>;

export const postgresSink: SinkRegistration<PostgresSinkConfig> = {
  type: 'postgres',
  schema: PostgresSinkSchema,
  guarantee: 'exactly-once',
  example: `  # Exactly once: one INSERT ... ON CONFLICT (uuid) DO NOTHING per request into a table created if absent.
  # db:
  #   type: postgres
  #   inputs: [okta]
  #   url: postgres://oktail:\${PG_PASSWORD}@db.example.com:5432/security   # a secret as a whole
  #   table: okta_events
  #   tls:                      # absent: the URL's sslmode decides
  #     ca_file: ./db-ca.pem
  #     verify_certificate: true
  #     verify_hostname: true
  #   batch:
  #     max_events: 500         # half a page: two requests per page, in parallel
  #     max_bytes: 10000000
  #     timeout_secs: 1
  #   request:
  #     timeout_secs: 60
  #     concurrency: 2          # also the number of connections
  #     retry_initial_backoff_secs: 1
  #     retry_max_duration_secs: 300
`,
  async create(name, config, context) {
    const { createNetworkSink } = await import('../shared/network-sink.js');
    const { PostgresDriver, eventRows, insertEvents } = await import('./driver.js');
    const { itemsOf } = await import('../shared/network-sink.js');
    const { eventBytes } = await import('../../core/sink.js');
    const tls = config.tls ? await tlsConnectOptions(config.tls, `sinks.${name}.tls`) : undefined;
    const driver = new PostgresDriver({
      name,
      url: config.url,
      table: config.table,
      tls,
      connections: config.request.concurrency,
    });
    const sink = createNetworkSink({
      name,
      inputs: config.inputs,
      type: 'postgres',
      driver,
      settings: networkSinkSettings(config.batch, config.request),
      telemetry: context.telemetry,
      log: context.log,
    });
    // With the cluster's state in this same database, the checkpoint store writes each page through its
    // commit transaction instead (src/cluster/store.ts): the events and the checkpoint land together.
    return Object.assign(sink, {
      transactional: {
        url: config.url,
        async write(batch: EventBatch, tx: StoreTransaction): Promise<void> {
          await driver.prepare();
          const items = Array.from({ length: batch.count }, (_, i) => ({
            bytes: eventBytes(batch, i),
            uuid: batch.uuids[i] ?? null,
            published: batch.published[i] ?? null,
            eventType: batch.eventTypes[i] ?? null,
            severity: batch.severities[i] ?? null,
            source: batch.source,
            domain: batch.domain,
          }));
          const sinkItems = itemsOf(items);
          const { rows, failed } = eventRows(sinkItems);
          if (failed.length > 0) {
            throw new OktailError(
              'SINK_WRITE_FAILED',
              `Sink ${name}: event ${failed[0]!.index} of the page cannot be stored (${failed[0]!.reason})`,
            );
          }
          await insertEvents(tx, config.table, sinkItems, rows);
        },
      },
    });
  },
};
