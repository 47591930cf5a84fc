import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { statePool, migrateState } from '../src/cluster/db.js';
import { LeaseStore } from '../src/cluster/leases.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../src/cluster/migrations.js';
import { PostgresCheckpointStore } from '../src/cluster/store.js';
import { isOktailError } from '../src/core/errors.js';
import { PostgresServer } from './support/postgres.js';
import { sleep, until } from './support/harness.js';

const server = new PostgresServer();
const password = 'pw-' + Math.random().toString(36).slice(2);
const pools: pg.Pool[] = [];
let databases = 0;

beforeAll(async () => {
  await server.start();
  await server.query(`CREATE ROLE oktail LOGIN PASSWORD '${password}'`);
}, 120_000);
afterEach(async () => {
  await Promise.allSettled(pools.splice(0).map((p) => p.end()));
});
afterAll(async () => {
  await server.stop();
});

/** A fresh database per test, migrated, so tests do not see each other's leases. */
async function freshDatabase(migrated = true): Promise<string> {
  const name = `state${++databases}`;
  await server.query(`CREATE DATABASE ${name} OWNER oktail`);
  const url = server.url(name, 'oktail', password);
  if (migrated) {
    const pool = poolFor(url);
    await migrateState(pool, url);
  }
  return url;
}

function poolFor(url: string): pg.Pool {
  const pool = statePool(url);
  pools.push(pool);
  return pool;
}

function replica(url: string, nodeId: string, leaseSecs = 15): { leases: LeaseStore; pool: pg.Pool } {
  const pool = poolFor(url);
  return { pool, leases: new LeaseStore(pool, { url, nodeId, leaseSecs }) };
}

describe('state schema migrations', () => {
  it('creates the schema once when five replicas start together, and records its version', async () => {
    const url = await freshDatabase(false);
    const results = await Promise.all(
      Array.from({ length: 5 }, () => {
        const pool = poolFor(url);
        return migrateState(pool, url);
      }),
    );
    const applied = results.flat();
    expect(applied).toEqual(MIGRATIONS.map((m) => m.version));
    const pool = poolFor(url);
    const { rows } = await pool.query<{ version: number }>('SELECT version FROM oktail_schema_version');
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await migrateState(pool, url)).toEqual([]);
  });

  it('refuses a schema newer than this version knows', async () => {
    const url = await freshDatabase();
    const pool = poolFor(url);
    await pool.query('INSERT INTO oktail_schema_version (version) VALUES ($1)', [SCHEMA_VERSION + 1]);
    const err = await migrateState(pool, url).catch((e: unknown) => e);
    expect(isOktailError(err, 'STATE_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toContain(`schema version ${SCHEMA_VERSION + 1}`);
    expect((err as Error).message).not.toContain(password);
  });
});

describe('leases with fencing against a real PostgreSQL', () => {
  it('lets exactly one of five replicas racing for each source take its lease', async () => {
    const url = await freshDatabase();
    const replicas = Array.from({ length: 5 }, (_, i) => replica(url, `node-${i}`));
    const sources = Array.from({ length: 8 }, (_, i) => `org${i}`);
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(
        sources.flatMap((source) =>
          replicas.map(async (r) => ({ source, node: r.leases.nodeId, got: await r.leases.acquire(source) })),
        ),
      );
      for (const source of sources) {
        const winners = results.filter((r) => r.source === source && r.got !== null);
        expect(winners, `winners for ${source} in round ${round}`).toHaveLength(1);
        // Releasing lets the next round race again from a free lease.
        const winner = winners[0]!;
        const owner = replicas.find((r) => r.leases.nodeId === winner.node)!;
        expect(await owner.leases.release(winner.got!.lease)).toBe(true);
      }
    }
    const pool = poolFor(url);
    const { rows } = await pool.query<{ fence: string }>('SELECT fence FROM oktail_sources');
    // Every acquisition raised the fence: three per source.
    expect(rows.map((r) => Number(r.fence))).toEqual(sources.map(() => 3));
  });

  it('keeps a renewed lease and lets another replica take it over only once it expired', async () => {
    const url = await freshDatabase();
    const a = replica(url, 'a', 1);
    const b = replica(url, 'b', 1);
    const first = await a.leases.acquire('okta');
    expect(first?.previousOwner).toBeNull();
    expect(await b.leases.acquire('okta')).toBeNull();
    // Renewed well within the second: b still cannot take it.
    for (let i = 0; i < 3; i++) {
      await sleep(300);
      expect((await a.leases.renew([first!.lease])).map((l) => l.source)).toEqual(['okta']);
      expect(await b.leases.acquire('okta')).toBeNull();
    }
    // a stops renewing: the database's clock expires the lease and b takes it with a higher fence.
    let taken: Awaited<ReturnType<LeaseStore['acquire']>> = null;
    await until(async () => (taken = await b.leases.acquire('okta')) !== null, 'the takeover', 10_000);
    expect(taken!.previousOwner).toBe('a');
    expect(taken!.fence).toBe(first!.fence + 1);
    // a's renewal names the old fence: refused, so a learns that it lost the source.
    expect(await a.leases.renew([first!.lease])).toEqual([]);
    expect(await a.leases.release(first!.lease)).toBe(false);
  });

  it('refuses a commit with a superseded fence and leaves the new owner’s checkpoint alone', async () => {
    const url = await freshDatabase();
    const a = replica(url, 'a', 1);
    const b = replica(url, 'b', 1);
    const leaseA = (await a.leases.acquire('okta'))!.lease;
    const storeA = new PostgresCheckpointStore(a.pool, {
      url,
      grant: (s) => (s === 'okta' ? { owner: 'a', fence: leaseA.fence } : undefined),
    });
    const entry = (cursor: string) => ({
      domain: 'acme.okta.com',
      state: { next: cursor },
      committed_at: new Date().toISOString(),
    });
    await storeA.commitSource('okta', entry('a-1'));
    expect((await storeA.loadSource('okta'))?.state).toEqual({ next: 'a-1' });

    let leaseB: Awaited<ReturnType<LeaseStore['acquire']>> = null;
    await until(async () => (leaseB = await b.leases.acquire('okta')) !== null, 'the takeover', 10_000);
    const storeB = new PostgresCheckpointStore(b.pool, {
      url,
      grant: (s) => (s === 'okta' ? { owner: 'b', fence: leaseB!.fence } : undefined),
    });
    await storeB.commitSource('okta', entry('b-1'));

    // a wakes up (a GC pause, a frozen VM) and commits with its old fence: refused, and its write in the
    // same transaction is rolled back with it.
    await a.pool.query('CREATE TABLE side_effects (x int)');
    const err = await storeA
      .commitSource('okta', entry('a-2'), [
        async (c) => void (await c.query('INSERT INTO side_effects VALUES (1)')),
      ])
      .catch((e: unknown) => e);
    expect(isOktailError(err, 'LEASE_LOST')).toBe(true);
    expect((await storeB.loadSource('okta'))?.state).toEqual({ next: 'b-1' });
    const { rows } = await a.pool.query('SELECT * FROM side_effects');
    expect(rows).toEqual([]);
    // Without any lease there is no grant at all.
    const none = new PostgresCheckpointStore(a.pool, { url });
    expect(
      isOktailError(await none.commitSource('okta', entry('x')).catch((e: unknown) => e), 'LEASE_LOST'),
    ).toBe(true);
  });

  it('writes a transactional write and the checkpoint together', async () => {
    const url = await freshDatabase();
    const a = replica(url, 'a');
    const lease = (await a.leases.acquire('okta'))!.lease;
    const store = new PostgresCheckpointStore(a.pool, {
      url,
      grant: () => ({ owner: 'a', fence: lease.fence }),
    });
    await a.pool.query('CREATE TABLE rows_written (x int)');
    await store.commitSource(
      'okta',
      { domain: 'acme.okta.com', state: { next: 'n1' }, committed_at: new Date().toISOString() },
      [async (c) => void (await c.query('INSERT INTO rows_written VALUES (1)'))],
    );
    // A failing write rolls the checkpoint back too.
    const err = await store
      .commitSource(
        'okta',
        { domain: 'acme.okta.com', state: { next: 'n2' }, committed_at: new Date().toISOString() },
        [
          async (c) => void (await c.query('INSERT INTO rows_written VALUES (2)')),
          async (c) => void (await c.query('INSERT INTO no_such_table VALUES (3)')),
        ],
      )
      .catch((e: unknown) => e);
    expect(isOktailError(err, 'STATE_UNAVAILABLE')).toBe(true);
    expect((await store.loadSource('okta'))?.state).toEqual({ next: 'n1' });
    expect((await a.pool.query('SELECT x FROM rows_written')).rows).toEqual([{ x: 1 }]);
  });

  it('counts live replicas by heartbeat and forgets one that left', async () => {
    const url = await freshDatabase();
    const a = replica(url, 'a', 2);
    const b = replica(url, 'b', 2);
    expect(await a.leases.heartbeat()).toBe(1);
    expect(await b.leases.heartbeat()).toBe(2);
    expect(await a.leases.heartbeat()).toBe(2);
    await b.leases.leave();
    expect(await a.leases.heartbeat()).toBe(1);
    const status = await a.leases.status();
    expect(status.nodes.map((n) => [n.node_id, n.live])).toEqual([['a', true]]);
  });
});
