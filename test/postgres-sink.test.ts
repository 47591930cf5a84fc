import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EventRecord } from '../src/emulator/events.js';
import { createRandom } from '../src/emulator/random.js';
import { createTestPki, type TestPki } from '../src/emulator/pki.js';
import { PostgresDriver, textArrayLiteral } from '../src/sinks/postgres/driver.js';
import { PostgresServer } from './support/postgres.js';
import { collect, runCli, secrets, spawnCli, startOrg, type TestOrg } from './support/harness.js';
import { generatedSinkItems, taggedBytes } from './support/sink-items.js';
import { waitUntil, writeConfigWithSink } from './support/sink-config.js';
import { itemsOf } from '../src/sinks/shared/network-sink.js';

const HOUR = 3600_000;

const server = new PostgresServer();
let url = '';
const password = 'pw-' + Math.random().toString(36).slice(2);

beforeAll(async () => {
  await server.start();
  url = await server.createDatabase('security', 'oktail', password);
}, 120_000);
afterAll(async () => {
  await server.stop();
});

const items = (n: number, seed: number) => generatedSinkItems(n, seed);

const signal = () => new AbortController().signal;

describe('postgres sink driver against a real PostgreSQL', () => {
  it('creates the table and inserts each event once, even when a batch is sent again', async () => {
    const driver = new PostgresDriver({ name: 'db', url, table: 'okta_events', connections: 2 });
    const batch = items(500, 1);
    expect(await driver.send(itemsOf(batch), signal())).toEqual({ kind: 'ok' });
    expect(await driver.send(itemsOf(batch.slice(100, 300)), signal())).toEqual({ kind: 'ok' });
    await driver.close();
    const { rows } = await server.query<{ n: string; distinct_n: string }>(
      'SELECT count(*) AS n, count(DISTINCT uuid) AS distinct_n FROM okta_events',
      [],
      'security',
    );
    expect(rows[0]).toEqual({ n: '500', distinct_n: '500' });
    const { rows: sample } = await server.query<{
      event: Record<string, unknown>;
      source: string;
      event_type: string;
    }>('SELECT event, source, event_type FROM okta_events WHERE uuid = $1', [batch[7]!.uuid], 'security');
    expect(sample[0]!.event).toEqual(JSON.parse(batch[7]!.bytes.toString('utf8')));
    expect(sample[0]!.event._okta_event_type).toBe('systemLog');
    expect(sample[0]!.source).toBe('okta');
    expect(sample[0]!.event_type).toBe(batch[7]!.eventType);
    // Events 1, 51 and 101 carry unicode, escapes and U+2028: stored as sent (jsonb keeps strings exactly;
    // numbers it normalises, so -0.0 in event 151 reads back as 0 whatever the client does).
    for (const k of [1, 51, 101]) {
      const { rows: tricky } = await server.query<{ event: unknown }>(
        'SELECT event FROM okta_events WHERE uuid = $1',
        [batch[k]!.uuid],
        'security',
      );
      expect(tricky[0]!.event).toEqual(JSON.parse(batch[k]!.bytes.toString('utf8')));
    }
  });

  it('writes text arrays the server reads back exactly, whatever the strings hold', async () => {
    const values = [
      '',
      'a"b',
      'back\\slash',
      'NULL',
      '{x,y}',
      ' spaced ',
      'é日本😀',
      'new\nline',
      '\\"',
      'comma,',
      'x',
    ];
    for (const list of [values, ['plain', 'uuids'], ['only'], []]) {
      const { rows } = await server.query<{ a: string[] }>(
        'SELECT $1::text[] AS a',
        [textArrayLiteral(list)],
        'security',
      );
      expect(rows[0]!.a).toEqual(list);
    }
  });

  it('inserts the events that make rows and reports each one that cannot, by its index', async () => {
    const driver = new PostgresDriver({ name: 'db', url, table: 'partial_events', connections: 1 });
    const batch = items(20, 21).map((item, i) => (i === 5 || i === 12 ? { ...item, uuid: null } : item));
    const outcome = await driver.send(itemsOf(batch), signal());
    await driver.close();
    expect(outcome).toEqual({
      kind: 'partial',
      failed: [5, 12].map((index) => ({ index, retryable: false, reason: 'the event has no uuid' })),
    });
    const { rows } = await server.query<{ uuid: string; event: unknown }>(
      'SELECT uuid, event FROM partial_events',
      [],
      'security',
    );
    expect(rows).toHaveLength(18);
    const byUuid = new Map(rows.map((r) => [r.uuid, r.event]));
    batch.forEach((item, i) => {
      if (i === 5 || i === 12) return;
      expect(byUuid.get(item.uuid!)).toEqual(JSON.parse(item.bytes.toString('utf8')));
    });
  });

  it('stores the events compressed with lz4 (the server has it), which costs the server less than pglz', async () => {
    const driver = new PostgresDriver({ name: 'db', url, table: 'lz4_events', connections: 1 });
    expect(await driver.send(itemsOf(items(200, 11)), signal())).toEqual({ kind: 'ok' });
    await driver.close();
    const { rows } = await server.query<{ method: string | null; n: string }>(
      'SELECT pg_column_compression(event) AS method, count(*) AS n FROM lz4_events GROUP BY 1 ORDER BY 1',
      [],
      'security',
    );
    // Values small enough to stay uncompressed show as null; every compressed one is lz4.
    expect(rows.filter((r) => r.method !== null).map((r) => r.method)).toEqual(['lz4']);
    expect(Number(rows.find((r) => r.method === 'lz4')?.n)).toBeGreaterThan(0);
  });

  it('retries while the server is down and delivers once it is back', async () => {
    const driver = new PostgresDriver({ name: 'db', url, table: 'restart_events', connections: 1 });
    expect(await driver.send(itemsOf(items(10, 2)), signal())).toEqual({ kind: 'ok' });
    await server.stopServer('immediate');
    const down = await driver.send(itemsOf(items(10, 3)), signal());
    expect(down.kind).toBe('retry');
    expect(down.kind === 'retry' && down.error.message).not.toContain(password);
    await server.startServer();
    expect(await driver.send(itemsOf(items(10, 3)), signal())).toEqual({ kind: 'ok' });
    await driver.close();
    const { rows } = await server.query<{ n: string }>(
      'SELECT count(*) AS n FROM restart_events',
      [],
      'security',
    );
    expect(rows[0]!.n).toBe('20');
  }, 60_000);

  it('halts on a missing privilege with a message that names the fix and not the password', async () => {
    await server.query('CREATE TABLE locked (x int)', [], 'security');
    await server.query(`CREATE ROLE reader LOGIN PASSWORD '${password}'`);
    await server.query('GRANT CONNECT ON DATABASE security TO reader');
    const readerUrl = server.url('security', 'reader', password);
    const driver = new PostgresDriver({ name: 'db', url: readerUrl, table: 'okta_events', connections: 1 });
    const result = await driver.send(itemsOf(items(3, 4)), signal());
    await driver.close();
    expect(result.kind).toBe('permanent');
    const message = result.kind === 'permanent' ? result.error.message : '';
    expect(message).toMatch(/42501/);
    expect(message).toMatch(/grant the role INSERT/);
    expect(message).not.toContain(password);
  });

  it('halts on a table with an incompatible shape', async () => {
    await server.query(
      'CREATE TABLE wrong_shape (uuid text PRIMARY KEY, published text, body json)',
      [],
      'security',
    );
    const driver = new PostgresDriver({ name: 'db', url, table: 'wrong_shape', connections: 1 });
    const result = await driver.send(itemsOf(items(3, 5)), signal());
    await driver.close();
    expect(result.kind).toBe('permanent');
    expect(result.kind === 'permanent' && result.error.message).toMatch(
      /incompatible shape \(published is text, not timestamp with time zone; no column event_type/,
    );
  });

  it('halts on a wrong password without showing it', async () => {
    const wrong = server.url('security', 'oktail', 'not-the-password');
    const driver = new PostgresDriver({ name: 'db', url: wrong, table: 'okta_events', connections: 1 });
    const result = await driver.send(itemsOf(items(1, 6)), signal());
    await driver.close();
    expect(result.kind).toBe('permanent');
    expect(result.kind === 'permanent' && result.error.message).toMatch(/28P01/);
    expect(result.kind === 'permanent' && result.error.message).not.toContain('not-the-password');
  });

  it('stops waiting for a server that accepts connections but never answers once the request is aborted', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => {
      sockets.push(socket);
      controller.abort(new Error('request timed out'));
    });
    const controller = new AbortController();
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    const driver = new PostgresDriver({
      name: 'db',
      url: `postgres://oktail:${password}@127.0.0.1:${port}/security`,
      table: 'okta_events',
      connections: 1,
    });
    // pg's own connect timeout is 30 s; the answer comes from the abort, right after the connection.
    const result = await driver.send(itemsOf(items(1, 10)), controller.signal);
    expect(result.kind).toBe('retry');
    for (const socket of sockets) socket.destroy();
    silent.close();
    await driver.close();
  });

  it('inserts 20,000 events in batches of 1,000', async () => {
    const driver = new PostgresDriver({ name: 'db', url, table: 'throughput', connections: 2 });
    const all = items(20_000, 7);
    const started = performance.now();
    for (let i = 0; i < all.length; i += 1000) {
      expect(await driver.send(itemsOf(all.slice(i, i + 1000)), signal())).toEqual({ kind: 'ok' });
    }
    const ms = performance.now() - started;
    await driver.close();
    console.log(
      `postgres sink: 20,000 events in ${Math.round(ms)} ms (${Math.round(20_000 / (ms / 1000))} events/s)`,
    );
    const { rows } = await server.query<{ n: string }>(
      'SELECT count(*) AS n FROM throughput',
      [],
      'security',
    );
    expect(rows[0]!.n).toBe('20000');
  }, 120_000);
});

describe('postgres sink in a running collector', () => {
  let org: TestOrg | undefined;
  afterEach(async () => {
    await org?.stop();
    org = undefined;
  });

  async function rowCount(table: string): Promise<number> {
    try {
      const { rows: r } = await server.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${table}`,
        [],
        'security',
      );
      return Number(r[0]!.n);
    } catch {
      return 0; // not created yet, or the server is restarting
    }
  }

  /**
   * Every served event is in the table exactly once (the primary key makes "once" structural; the count
   * makes "every"), and its `event` equals the tagged bytes as jsonb (jsonb keeps values, not spelling:
   * key order, whitespace and numbers such as -0.0 are normalised).
   */
  async function expectExactlyOnce(table: string, served: readonly EventRecord[]): Promise<void> {
    const { rows: r } = await server.query<{ total: string; matching: string; sources: string }>(
      `SELECT (SELECT count(*) FROM ${table}) AS total, ` +
        `(SELECT count(*) FROM unnest($1::text[], $2::text[]) AS x(u, e) JOIN ${table} t ON t.uuid = x.u ` +
        "WHERE t.event = x.e::jsonb AND t.source = 'okta') AS matching",
      [served.map((e) => e.uuid), served.map((e) => taggedBytes(e).toString('utf8'))],
      'security',
    );
    expect(r[0]).toMatchObject({ total: String(served.length), matching: String(served.length) });
  }

  const sinkLines = (table: string) => [
    'db:',
    '  type: postgres',
    '  inputs: [okta]',
    '  url: ${PG_URL}',
    `  table: ${table}`,
    '  batch: { max_events: 1000, max_bytes: 10000000, timeout_secs: 0 }',
    '  request: { timeout_secs: 20, retry_initial_backoff_secs: 0.05, retry_max_duration_secs: 1 }',
  ];

  it('keeps every uuid exactly once across SIGKILLs of the collector at points chosen from progress', async () => {
    org = await startOrg({ latencyMs: 20 });
    secrets.add(password);
    org.emulator.appendEvents(12_000, { publishedStart: Date.now() - HOUR, seed: 21, outOfOrder: 0.05 });
    org.emulator.randomFaults({
      probability: 0.05,
      seed: 5,
      kinds: [{ kind: 'status', status: 500 }, { kind: 'reset' }],
    });
    const { file } = await writeConfigWithSink(org, sinkLines('crash_events'), {
      startFrom: new Date(Date.now() - 2 * HOUR).toISOString(),
    });
    const env = { OKTA_API_TOKEN: org.token, PG_URL: url };
    const random = createRandom(20261128);
    let kills = 0;
    for (let round = 0; round < 8; round++) {
      if (round === 3)
        org.emulator.appendEvents(1500, { publishedStart: Date.now() - HOUR / 2, outOfOrder: 0.3 });
      const before = await rowCount('crash_events');
      // Kill once the table grew by a random number of rows: mid-delivery, whatever the machine's speed.
      const target = before + 200 + random.int(1500);
      const started = performance.now();
      const child = spawnCli(['run', '--once', '-c', file], env);
      const done = collect(child, started, 120_000);
      await waitUntil(
        async () => child.exitCode !== null || (await rowCount('crash_events')) >= target,
        60_000,
      );
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        kills++;
      }
      const result = await done;
      if (result.signal !== 'SIGKILL') expect(result.code, result.stderr).toBe(0);
    }
    org.emulator.randomFaults(null);
    const final = await runCli(['run', '--once', '-c', file], { env });
    expect(final.code, final.stderr).toBe(0);
    expect(kills).toBeGreaterThanOrEqual(4);
    await expectExactlyOnce('crash_events', org.emulator.allEvents());
    console.log(
      `postgres crash loop: ${kills} SIGKILLs, ${org.emulator.allEvents().length} events, each once`,
    );
  }, 300_000);

  it('rides out a server restart in the middle of delivery', async () => {
    org = await startOrg({ latencyMs: 20 });
    org.emulator.appendEvents(8000, { publishedStart: Date.now() - HOUR, seed: 22 });
    const { file } = await writeConfigWithSink(org, sinkLines('restart_run'), {
      startFrom: new Date(Date.now() - 2 * HOUR).toISOString(),
    });
    const started = performance.now();
    const child = spawnCli(['run', '--once', '-c', file], { OKTA_API_TOKEN: org.token, PG_URL: url });
    const done = collect(child, started, 180_000);
    expect(await waitUntil(async () => (await rowCount('restart_run')) >= 2000, 60_000)).toBe(true);
    await server.stopServer('immediate');
    // Down until the collector has noticed and retried (its retries are visible in its log).
    await waitUntil(() => child.exitCode !== null, 1500);
    await server.startServer();
    const result = await done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/will retry|retry/i);
    expect(result.stderr).not.toContain(password);
    await expectExactlyOnce('restart_run', org.emulator.allEvents());
  }, 240_000);
});

describe('postgres sink over TLS', () => {
  let pki: TestPki;
  let tlsServer: PostgresServer;
  let tlsUrl = '';
  beforeAll(async () => {
    pki = await createTestPki();
    // This server accepts TCP connections only with TLS (hostssl), so a delivery proves TLS was used.
    tlsServer = new PostgresServer({ tls: pki.server });
    await tlsServer.start();
    tlsUrl = await tlsServer.createDatabase('security', 'oktail', password);
  }, 120_000);
  afterAll(async () => {
    await tlsServer.stop();
  });

  it('verifies the server against tls.ca_file and the host name (verify-full), ignoring sslmode in the URL', async () => {
    const driver = new PostgresDriver({
      name: 'db',
      url: `${tlsUrl}?sslmode=disable`,
      table: 'okta_events',
      connections: 1,
      tls: { ca: pki.caCert, rejectUnauthorized: true },
    });
    expect(await driver.send(itemsOf(items(5, 8)), signal())).toEqual({ kind: 'ok' });
    await driver.close();
    const { rows } = await tlsServer.query<{ n: string }>(
      'SELECT count(*) AS n FROM okta_events',
      [],
      'security',
    );
    expect(rows[0]!.n).toBe('5');
  });

  it('halts when the server certificate is not signed by tls.ca_file', async () => {
    const driver = new PostgresDriver({
      name: 'db',
      url: tlsUrl,
      table: 'okta_events',
      connections: 1,
      tls: { ca: pki.otherCaCert, rejectUnauthorized: true },
    });
    const result = await driver.send(itemsOf(items(1, 9)), signal());
    await driver.close();
    expect(result.kind).toBe('permanent');
    expect(result.kind === 'permanent' && result.error.message).toMatch(/TLS to PostgreSQL.*tls\.ca_file/);
  });
});
