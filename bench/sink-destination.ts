/*
 * One sink's destination in a process of its own, driven over IPC by bench/run.ts (the sinks scenario):
 * the test suite's emulators (HTTP ingest, Splunk HEC, Elasticsearch), or the real server (PostgreSQL
 * from initdb, rsyslogd, s3rver). Nothing of it runs in the oktail process or in the harness, so the CPU
 * and memory measured are oktail's alone. `verify` counts what the destination holds against the uuids
 * the Okta emulator served.
 */
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createTestPki } from '../src/emulator/pki.js';
import { createTableSql } from '../src/sinks/postgres/driver.js';
import { EsEmulator } from '../test/support/es-emulator.js';
import { HecEmulator } from '../test/support/hec-emulator.js';
import { HttpIngest } from '../test/support/http-ingest.js';
import { PostgresServer } from '../test/support/postgres.js';
import { RsyslogServer } from '../test/support/rsyslog.js';
import { S3Server } from '../test/support/s3.js';
import type { NetworkSink } from './results.js';

export interface DestinationConfig {
  type: NetworkSink;
  /** Folder for the CA file the sink trusts. */
  dir: string;
}

export interface DestinationReady {
  type: 'ready';
  /** The sink's config lines under `sinks:` (the sink is called `dest`). */
  sinkLines: string[];
  env: Record<string, string>;
}

/** What the destination held against what the Okta emulator served. */
export interface DestinationCount {
  type: 'count';
  /** Events (rows, documents, messages, object lines) the destination holds. */
  held: number;
  /** Distinct uuids among them. */
  distinct: number;
  /** Served uuids the destination does not hold. */
  missing: number;
  /** Held uuids the Okta emulator never served. */
  unknown: number;
}

export type DestinationCommand = { cmd: 'count'; servedFile: string; expected: number } | { cmd: 'stop' };

interface Destination {
  sinkLines: string[];
  env: Record<string, string>;
  uuids(): Promise<string[]>;
  stop(): Promise<void>;
}

const uuidOf = (json: string) => /"uuid":"([^"]+)"/.exec(json)?.[1] ?? '';
const secret = (what: string) => `${what}-${randomBytes(12).toString('base64url')}`;

async function start(config: DestinationConfig): Promise<Destination> {
  const pki = await createTestPki();
  const caFile = join(config.dir, 'destination-ca.pem');
  await writeFile(caFile, pki.caCert);
  const tls = `    tls: { ca_file: ${JSON.stringify(caFile)} }`;
  switch (config.type) {
    case 'http': {
      const ingest = new HttpIngest(pki);
      const url = await ingest.start();
      const token = secret('ingest');
      ingest.expectAuthorization = `Bearer ${token}`;
      return {
        sinkLines: [
          '  dest:',
          '    type: http',
          '    inputs: [okta]',
          `    uri: ${JSON.stringify(url)}`,
          '    auth: { strategy: bearer, token: "${INGEST_TOKEN}" }',
          tls,
        ],
        env: { INGEST_TOKEN: token },
        uuids: () => Promise.resolve(ingest.uuids()),
        stop: () => ingest.stop(),
      };
    }
    case 'splunk_hec': {
      const token = secret('hec');
      const hec = new HecEmulator({ tls: pki.server, tokens: [{ value: token, ack: true }] });
      const url = await hec.start();
      return {
        sinkLines: [
          '  dest:',
          '    type: splunk_hec',
          '    inputs: [okta]',
          `    endpoint: ${JSON.stringify(url)}`,
          '    token: ${HEC_TOKEN}',
          // The emulator indexes a batch 20 ms after accepting it; the default 1 s poll would measure
          // mostly the pause between polls, not oktail.
          '    ack_poll_interval_ms: 50',
          tls,
        ],
        env: { HEC_TOKEN: token },
        uuids: () => Promise.resolve(hec.events().map((e) => uuidOf(e.event))),
        stop: () => hec.stop(),
      };
    }
    case 'elasticsearch': {
      const password = secret('es');
      const es = new EsEmulator({ tls: pki.server, users: [{ user: 'oktail', password }] });
      const url = await es.start();
      return {
        sinkLines: [
          '  dest:',
          '    type: elasticsearch',
          '    inputs: [okta]',
          `    endpoints: [${JSON.stringify(url)}]`,
          '    auth: { strategy: basic, user: oktail, password: "${ES_PASSWORD}" }',
          tls,
        ],
        env: { ES_PASSWORD: password },
        // The sink uses the event's uuid as the document _id.
        uuids: () => Promise.resolve(es.documents().map((d) => d.id)),
        stop: () => es.stop(),
      };
    }
    case 'postgres': {
      const server = new PostgresServer();
      await server.start();
      const password = secret('pg');
      await server.query(`CREATE ROLE oktail LOGIN PASSWORD '${password}'`);
      await server.query('CREATE DATABASE security');
      await server.query(createTableSql('okta_events'), [], 'security');
      await server.query('GRANT INSERT, SELECT ON okta_events TO oktail', [], 'security');
      return {
        sinkLines: ['  dest:', '    type: postgres', '    inputs: [okta]', '    url: ${PG_URL}'],
        env: { PG_URL: server.url('security', 'oktail', password) },
        uuids: async () =>
          (await server.query<{ uuid: string }>('SELECT uuid FROM okta_events', [], 'security')).rows.map(
            (r) => r.uuid,
          ),
        stop: () => server.stop(),
      };
    }
    case 'syslog': {
      const server = new RsyslogServer();
      await server.start();
      return {
        sinkLines: [
          '  dest:',
          '    type: syslog',
          '    inputs: [okta]',
          `    address: 127.0.0.1:${server.port}`,
          '    mode: tcp',
        ],
        env: {},
        uuids: async () => (await server.received()).map((r) => uuidOf(r.msg)),
        stop: () => server.stop(),
      };
    }
    case 's3':
    case 's3_uncompressed': {
      const gzipped = config.type === 's3';
      const server = new S3Server(['security-logs']);
      await server.start();
      const client = new S3Client({
        region: 'us-east-1',
        endpoint: server.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      });
      return {
        sinkLines: [
          '  dest:',
          '    type: s3',
          '    inputs: [okta]',
          '    bucket: security-logs',
          '    region: us-east-1',
          `    endpoint: ${server.endpoint}`,
          '    force_path_style: true',
          '    auth: { access_key_id: "${S3_KEY_ID}", secret_access_key: "${S3_SECRET}" }',
          ...(gzipped ? [] : ['    compression: none']),
        ],
        env: { S3_KEY_ID: server.accessKeyId, S3_SECRET: server.secretAccessKey },
        uuids: async () => {
          const uuids: string[] = [];
          let token: string | undefined;
          do {
            const listed = await client.send(
              new ListObjectsV2Command({ Bucket: 'security-logs', ContinuationToken: token }),
            );
            for (const o of listed.Contents ?? []) {
              const out = await client.send(new GetObjectCommand({ Bucket: 'security-logs', Key: o.Key! }));
              const body = Buffer.from(await out.Body!.transformToByteArray());
              const text = (gzipped ? gunzipSync(body) : body).toString('utf8');
              for (const line of text.split('\n')) if (line !== '') uuids.push(uuidOf(line));
            }
            token = listed.IsTruncated ? listed.NextContinuationToken : undefined;
          } while (token !== undefined);
          return uuids;
        },
        stop: async () => {
          client.destroy();
          await server.stop();
        },
      };
    }
  }
}

async function count(
  destination: Destination,
  servedFile: string,
  expected: number,
): Promise<DestinationCount> {
  const served = new Set(
    (await readFile(servedFile, 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map(uuidOf),
  );
  // At-least-once destinations (syslog above all) may still be writing when the CLI has exited: wait
  // for progress to stop or every event to be there, with a generous deadline.
  let held = await destination.uuids();
  const deadline = Date.now() + 120_000;
  while (held.length < expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    const again = await destination.uuids();
    if (again.length === held.length) break;
    held = again;
  }
  const distinct = new Set(held);
  let missing = 0;
  for (const u of served) if (!distinct.has(u)) missing++;
  let unknown = 0;
  for (const u of distinct) if (!served.has(u)) unknown++;
  return { type: 'count', held: held.length, distinct: distinct.size, missing, unknown };
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as DestinationConfig;
  const destination = await start(config);
  process.on('message', (message: DestinationCommand) => {
    if (message.cmd === 'count') {
      count(destination, message.servedFile, message.expected).then(
        (c) => process.send!(c),
        (err: unknown) => process.send!({ type: 'error', message: String(err) }),
      );
    } else {
      void destination.stop().finally(() => process.disconnect());
    }
  });
  process.on('disconnect', () => void destination.stop().finally(() => process.exit(0)));
  const ready: DestinationReady = { type: 'ready', sinkLines: destination.sinkLines, env: destination.env };
  process.send!(ready);
}

main().catch((err: unknown) => {
  process.stderr.write(`Destination process failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
