/*
 * One sink's destination in a process of its own, driven over IPC by bench/run.ts (the sinks scenario):
 * the test suite's emulators (HTTP ingest, Splunk HEC, Elasticsearch), or the real server (PostgreSQL
 * from initdb, rsyslogd, s3rver). Nothing of it runs in the oktail process or in the harness, so the CPU
 * and memory measured are oktail's alone. `verify` counts what the destination holds against the uuids
 * the Okta emulator served.
 */
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createTestPki } from '../src/emulator/pki.js';
import pg from 'pg';
import { createTableSql, insertSql, textArrayLiteral } from '../src/sinks/postgres/driver.js';
import { EsEmulator } from '../test/support/es-emulator.js';
import { HecEmulator } from '../test/support/hec-emulator.js';
import { HttpIngest } from '../test/support/http-ingest.js';
import { PostgresServer } from '../test/support/postgres.js';
import { RsyslogServer } from '../test/support/rsyslog.js';
import { S3Server } from '../test/support/s3.js';
import { procStat, type ProcStat } from './proc-stat.js';
import type { NetworkSink } from './results.js';
import { TAG_TAIL } from './verify.js';

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

/** CPU the destination has used so far: its own process and its server's (see `treeCpuMs`). */
export interface DestinationCpu {
  type: 'cpu';
  ms: number;
}

/** What the server stores when fed ready statements by a client that does nothing else (postgres only). */
export interface ServerAlone {
  type: 'alone';
  events: number;
  wallMs: number;
  eventsPerSec: number;
  /** The server's CPU for it. */
  serverCpuMs: number;
}

export type DestinationCommand =
  | { cmd: 'count'; servedFile: string; expected: number }
  | { cmd: 'cpu' }
  | { cmd: 'alone'; servedFile: string }
  | { cmd: 'stop' };

interface Destination {
  sinkLines: string[];
  env: Record<string, string>;
  uuids(): Promise<string[]>;
  /** Roots of the process trees that do the destination's work, besides this process. */
  serverPids?(): number[];
  alone?(servedFile: string): Promise<ServerAlone>;
  stop(): Promise<void>;
}

/**
 * CPU time (ms) of the process trees rooted at `roots`: every live process's own time plus what its
 * reaped children used, so a PostgreSQL backend that ended with its connection still counts, through the
 * postmaster that reaped it.
 */
function treeCpuMs(roots: readonly number[]): number {
  const procs = new Map<number, ProcStat>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    // null: ended between the listing and the read, and its time is in its parent's children's time.
    const stat = procStat(Number(entry));
    if (stat) procs.set(Number(entry), stat);
  }
  const counted = new Set<number>();
  const walk = (pid: number) => {
    if (counted.has(pid) || !procs.has(pid)) return;
    counted.add(pid);
    for (const [child, p] of procs) if (p.ppid === pid) walk(child);
  };
  for (const root of roots) walk(root);
  let ms = 0;
  for (const pid of counted) ms += procs.get(pid)!.cpuMs + procs.get(pid)!.childrenCpuMs;
  return ms;
}

/** The postgres sink's defaults (src/sinks/postgres/registration.ts): events per request, connections. */
const PG_REQUEST_EVENTS = 500;
const PG_CONNECTIONS = 2;

/**
 * The served events, tagged as oktail stores them, inserted into a table of their own with the sink's
 * statement, request size and connection count, from statements made before the clock starts: what this
 * server can take on this machine when the client costs next to nothing.
 */
async function postgresAlone(server: PostgresServer, servedFile: string): Promise<ServerAlone> {
  const lines = (await readFile(servedFile, 'utf8')).split('\n').filter((l) => l !== '');
  const statements: Buffer[][] = [];
  for (let i = 0; i < lines.length; i += PG_REQUEST_EVENTS) {
    const events = lines.slice(i, i + PG_REQUEST_EVENTS).map((l) => {
      const e = JSON.parse(l) as { uuid: string; published: string; eventType: string };
      return {
        uuid: e.uuid,
        published: e.published,
        eventType: e.eventType,
        line: l.slice(0, -1) + TAG_TAIL,
      };
    });
    statements.push([
      Buffer.from(textArrayLiteral(events.map((e) => e.uuid))),
      Buffer.from(textArrayLiteral(events.map((e) => e.published))),
      Buffer.from(textArrayLiteral(events.map((e) => e.eventType))),
      Buffer.from(textArrayLiteral(events.map(() => 'okta'))),
      Buffer.from(events.map((e) => e.line).join('\n')),
    ]);
  }
  const table = 'okta_events_alone';
  await server.query(createTableSql(table), [], 'security');
  const clients = await Promise.all(
    Array.from({ length: PG_CONNECTIONS }, async () => {
      const client = new pg.Client(server.url('security'));
      await client.connect();
      await client.query("SET default_toast_compression = 'lz4'");
      return client;
    }),
  );
  try {
    const roots = [server.postmasterPid()];
    const cpuBefore = treeCpuMs(roots);
    const started = performance.now();
    let next = 0;
    await Promise.all(
      clients.map(async (client) => {
        while (next < statements.length) await client.query(insertSql(table), statements[next++]);
      }),
    );
    const wallMs = performance.now() - started;
    const serverCpuMs = treeCpuMs(roots) - cpuBefore;
    return {
      type: 'alone',
      events: lines.length,
      wallMs,
      eventsPerSec: lines.length / (wallMs / 1000),
      serverCpuMs,
    };
  } finally {
    await Promise.all(clients.map((c) => c.end()));
    await server.query(`DROP TABLE ${table}`, [], 'security');
  }
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
        // pg_ctl leaves the postmaster to run on its own, outside this process's tree.
        serverPids: () => [server.postmasterPid()],
        alone: (servedFile) => postgresAlone(server, servedFile),
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
      const client = server.client();
      return {
        sinkLines: server
          .sinkLines('dest', [
            '  auth: { access_key_id: "${S3_KEY_ID}", secret_access_key: "${S3_SECRET}" }',
            ...(gzipped ? [] : ['  compression: none']),
          ])
          .map((line) => `  ${line}`),
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
    } else if (message.cmd === 'cpu') {
      const cpu: DestinationCpu = {
        type: 'cpu',
        ms: treeCpuMs([process.pid, ...(destination.serverPids?.() ?? [])]),
      };
      process.send!(cpu);
    } else if (message.cmd === 'alone') {
      if (!destination.alone) process.send!({ type: 'error', message: `${config.type} has no alone run` });
      else
        destination.alone(message.servedFile).then(
          (a) => process.send!(a),
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
