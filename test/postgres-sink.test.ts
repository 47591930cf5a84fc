import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresDriver } from '../src/sinks/postgres/driver.js';
import { PostgresServer } from './support/postgres.js';
import { sinkItems } from './support/sink-items.js';

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

const items = (n: number, seed: number) => sinkItems(n, seed);

const signal = () => new AbortController().signal;

describe('postgres sink driver against a real PostgreSQL', () => {
  it('creates the table and inserts each event once, even when a batch is sent again', async () => {
    const driver = new PostgresDriver({ name: 'db', url, table: 'okta_events', connections: 2 });
    const batch = items(500, 1);
    expect(await driver.send(batch, signal())).toEqual({ kind: 'ok' });
    expect(await driver.send(batch.slice(100, 300), signal())).toEqual({ kind: 'ok' });
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
  });

  it('retries while the server is down and delivers once it is back', async () => {
    const driver = new PostgresDriver({ name: 'db', url, table: 'restart_events', connections: 1 });
    expect(await driver.send(items(10, 2), signal())).toEqual({ kind: 'ok' });
    await server.stopServer('immediate');
    const down = await driver.send(items(10, 3), signal());
    expect(down.kind).toBe('retry');
    expect(down.kind === 'retry' && down.error.message).not.toContain(password);
    await server.startServer();
    expect(await driver.send(items(10, 3), signal())).toEqual({ kind: 'ok' });
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
    const result = await driver.send(items(3, 4), signal());
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
    const result = await driver.send(items(3, 5), signal());
    await driver.close();
    expect(result.kind).toBe('permanent');
    expect(result.kind === 'permanent' && result.error.message).toMatch(
      /incompatible shape \(published is text, not timestamp with time zone; no column event_type/,
    );
  });

  it('halts on a wrong password without showing it', async () => {
    const wrong = server.url('security', 'oktail', 'not-the-password');
    const driver = new PostgresDriver({ name: 'db', url: wrong, table: 'okta_events', connections: 1 });
    const result = await driver.send(items(1, 6), signal());
    await driver.close();
    expect(result.kind).toBe('permanent');
    expect(result.kind === 'permanent' && result.error.message).toMatch(/28P01/);
    expect(result.kind === 'permanent' && result.error.message).not.toContain('not-the-password');
  });

  it('inserts 20,000 events in batches of 1,000', async () => {
    const driver = new PostgresDriver({ name: 'db', url, table: 'throughput', connections: 2 });
    const all = items(20_000, 7);
    const started = performance.now();
    for (let i = 0; i < all.length; i += 1000) {
      expect(await driver.send(all.slice(i, i + 1000), signal())).toEqual({ kind: 'ok' });
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
