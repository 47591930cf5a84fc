import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { RequestLogEntry } from '../../src/emulator/emulator.js';
import { assertNoSecret, spawnCli, type TestOrg } from './harness.js';
import { PostgresServer } from './postgres.js';

/** Replicas of one config sharing `orgs` through PostgreSQL at `url`, all into a postgres sink there. */
export async function writeClusterConfig(options: {
  dir: string;
  orgs: readonly TestOrg[];
  url: string;
  leaseSecs: number;
  intervalSecs?: number;
  startFrom?: string;
  api?: boolean;
}): Promise<{ file: string; env: Record<string, string>; names: string[] }> {
  const names = options.orgs.map((_, i) => `org${i}`);
  // NODE_ID: each replica sets its own; commands (cluster status, state) need it set to anything.
  const env: Record<string, string> = { PG_URL: options.url, NODE_ID: 'operator' };
  const lines = [
    `data_dir: ${JSON.stringify(join(options.dir, 'data'))}`,
    'state:',
    '  backend: postgres',
    '  url: ${PG_URL}',
    `  lease_secs: ${options.leaseSecs}`,
    '  node_id: ${NODE_ID}',
    ...(options.api ? ['api:', '  address: 127.0.0.1:${API_PORT}'] : []),
    'sources:',
  ];
  options.orgs.forEach((org, i) => {
    env[`TOKEN_${i}`] = org.token;
    lines.push(
      `  ${names[i]}:`,
      '    type: okta',
      `    domain: "${org.domain}"`,
      `    interval_secs: ${options.intervalSecs ?? 10}`,
      ...(options.startFrom ? [`    start_from: ${options.startFrom}`] : []),
      '    request_timeout_secs: 10',
      '    retry:',
      '      initial_backoff_ms: 20',
      '      max_backoff_secs: 1',
      '    auth:',
      `      token: \${TOKEN_${i}}`,
      '    tls:',
      '      enabled: true',
      `      ca_file: ${JSON.stringify(org.files.caFile)}`,
    );
  });
  lines.push(
    'sinks:',
    '  db:',
    '    type: postgres',
    `    inputs: [${names.join(', ')}]`,
    '    url: ${PG_URL}',
    '    table: okta_events',
    '    batch:',
    '      max_events: 1000',
    '      max_bytes: 10000000',
    '      timeout_secs: 1',
  );
  const file = join(options.dir, 'cluster.yaml');
  await writeFile(file, lines.join('\n') + '\n');
  return { file, env, names };
}

/** A running replica: its process and what it logged (JSON lines on stderr). */
export interface ReplicaProcess {
  nodeId: string;
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnReplica(file: string, nodeId: string, env: Record<string, string>): ReplicaProcess {
  const child = spawnCli(['run', '-c', file, '--log-format', 'json', '-q'], { ...env, NODE_ID: nodeId });
  let err = '';
  child.stdout!.resume();
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      assertNoSecret(err, `replica ${nodeId}'s log`);
      resolve({ code, signal });
    }),
  );
  return { nodeId, child, stderr: () => err, exited };
}

/** The node id a replica put in its User-Agent (`oktail/x.y.z (node NAME)`), or null. */
export function nodeOf(entry: RequestLogEntry): string | null {
  return /\(node ([^)]+)\)/.exec(entry.userAgent ?? '')?.[1] ?? null;
}

/**
 * Pairs of requests to one org from two different replicas whose times overlap: [arrival, end] of one
 * intersects the other's. A request still in flight counts as lasting until now.
 */
export function overlappingRequests(log: readonly RequestLogEntry[]): [RequestLogEntry, RequestLogEntry][] {
  const spans = log
    .filter((e) => e.path === '/api/v1/logs')
    .map((e) => ({ e, node: nodeOf(e), from: e.at, to: e.endedAt ?? Date.now() }))
    .sort((a, b) => a.from - b.from);
  const out: [RequestLogEntry, RequestLogEntry][] = [];
  for (let i = 0; i < spans.length; i++) {
    for (let j = i + 1; j < spans.length && spans[j]!.from <= spans[i]!.to; j++) {
      if (spans[j]!.node !== spans[i]!.node) out.push([spans[i]!.e, spans[j]!.e]);
    }
  }
  return out;
}

/** Rows in the postgres sink's table (0 until the first write created it). */
export async function eventCount(server: PostgresServer, database: string): Promise<number> {
  const exists = await server.query<{ t: string | null }>(
    "SELECT to_regclass('okta_events') AS t",
    [],
    database,
  );
  if (exists.rows[0]!.t === null) return 0;
  const { rows } = await server.query<{ n: string }>('SELECT count(*) AS n FROM okta_events', [], database);
  return Number(rows[0]!.n);
}

/**
 * A throwaway PostgreSQL for the file's tests (a role `oktail` with a random password), a fresh database per
 * call of `database()`, and clean-up after each test of the replicas and temporary folders it registered:
 * a replica still running is SIGCONTed (it may be frozen) and SIGKILLed.
 */
export function useClusterDatabase(prefix: string) {
  const server = new PostgresServer();
  const password = 'pw-' + Math.random().toString(36).slice(2);
  let databases = 0;
  const replicas: ReplicaProcess[] = [];
  const dirs: string[] = [];
  beforeAll(async () => {
    await server.start();
    await server.query(`CREATE ROLE oktail LOGIN PASSWORD '${password}'`);
  }, 120_000);
  afterEach(async () => {
    for (const r of replicas.splice(0)) {
      if (r.child.exitCode === null && r.child.signalCode === null) {
        r.child.kill('SIGCONT');
        r.child.kill('SIGKILL');
      }
      await r.exited;
    }
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  afterAll(async () => {
    await server.stop();
  });
  return {
    server,
    password,
    /** Replicas to stop after the test. */
    replicas,
    database: async (): Promise<{ name: string; url: string }> => {
      const name = `${prefix}${++databases}`;
      await server.query(`CREATE DATABASE ${name} OWNER oktail`);
      return { name, url: server.url(name, 'oktail', password) };
    },
    /** A temporary folder removed after the test. */
    tempDir: async (): Promise<string> => {
      const dir = await mkdtemp(join(tmpdir(), `oktail-${prefix}-`));
      dirs.push(dir);
      return dir;
    },
  };
}
