import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EventRecord } from '../src/emulator/events.js';
import { createRandom } from '../src/emulator/random.js';
import { HOUR, sleep, until, useOrg, type TestOrg } from './support/harness.js';
import { PostgresServer } from './support/postgres.js';
import {
  nodeOf,
  overlappingRequests,
  spawnReplica,
  writeClusterConfig,
  type ReplicaProcess,
  eventCount,
} from './support/cluster.js';

const server = new PostgresServer();
const password = 'pw-' + Math.random().toString(36).slice(2);
const replicas: ReplicaProcess[] = [];
let dir = '';

beforeAll(async () => {
  await server.start();
  await server.query(`CREATE ROLE oktail LOGIN PASSWORD '${password}'`);
  await server.query('CREATE DATABASE chaos OWNER oktail');
  dir = await mkdtemp(join(tmpdir(), 'oktail-chaos-'));
}, 120_000);
afterEach(async () => {
  for (const r of replicas.splice(0)) {
    if (r.child.exitCode === null && r.child.signalCode === null) {
      r.child.kill('SIGCONT');
      r.child.kill('SIGKILL');
    }
    await r.exited;
  }
});
afterAll(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

const startOrg = useOrg();

const LEASE_SECS = 3;
/** How long replicas are killed, restarted and frozen; the test then waits for the collectors to catch up. */
const CHAOS_MS = 35_000;

describe('chaos: replicas killed, restarted and frozen while collecting 8 orgs', () => {
  it('delivers every uuid of every org exactly once, and no org ever answers two replicas at once', async () => {
    const random = createRandom(1313);
    const orgs: TestOrg[] = [];
    const served: EventRecord[][] = [];
    for (let i = 0; i < 8; i++) {
      const org = await startOrg({ latencyMs: 5 });
      // A backlog with late arrivals (published before their predecessors), as Okta delivers them.
      served.push(
        org.emulator.appendEvents(1500 + 250 * i, {
          publishedStart: Date.now() - HOUR,
          seed: 700 + i,
          outOfOrder: 0.05,
        }),
      );
      orgs.push(org);
    }
    const url = server.url('chaos', 'oktail', password);
    const { file, env } = await writeClusterConfig({
      dir,
      orgs,
      url,
      leaseSecs: LEASE_SECS,
      startFrom: new Date(Date.now() - 2 * HOUR).toISOString(),
    });

    let incarnation = 0;
    const live: (ReplicaProcess | null)[] = [null, null, null];
    const launch = (slot: number) => {
      const r = spawnReplica(file, `r${slot}-${++incarnation}`, env);
      replicas.push(r);
      live[slot] = r;
    };
    for (let slot = 0; slot < 3; slot++) launch(slot);

    // Live events keep arriving, some of them late.
    let appending = true;
    const appender = (async () => {
      let n = 0;
      while (appending) {
        const i = n++ % orgs.length;
        served[i]!.push(
          ...orgs[i]!.emulator.appendEvents(1 + random.int(20), {
            publishedStart: Date.now() - (random.next() < 0.2 ? 30_000 : 500),
            seed: 10_000 + n,
          }),
        );
        await sleep(100);
      }
    })();

    const started = performance.now();
    let froze = false;
    const kills: string[] = [];
    while (performance.now() - started < CHAOS_MS) {
      await sleep(2500 + random.int(2500));
      const slot = random.int(3);
      const victim = live[slot]!;
      if (!froze && performance.now() - started > CHAOS_MS / 3) {
        const { rows: held } = await server.query<{ source: string }>(
          'SELECT source FROM oktail_sources WHERE owner = $1 AND lease_expires_at > now()',
          [victim.nodeId],
          'chaos',
        );
        if (held.length > 0) {
          // Frozen past its lease (a GC pause, a stopped VM): the others take its sources over; woken
          // up, it must find its leases gone, stop those sources and poll none of those orgs again.
          froze = true;
          victim.child.kill('SIGSTOP');
          await until(
            async () => {
              const { rows } = await server.query(
                'SELECT source FROM oktail_sources WHERE source = ANY($1) AND owner <> $2 AND lease_expires_at > now()',
                [held.map((r) => r.source), victim.nodeId],
                'chaos',
              );
              return rows.length === held.length;
            },
            "the frozen replica's sources taken over",
            60_000,
          );
          victim.child.kill('SIGCONT');
          await until(
            () => victim.stderr().includes('Lost the lease of a source'),
            'the woken replica noticing',
            30_000,
          );
          continue;
        }
      }
      victim.child.kill('SIGKILL');
      await victim.exited;
      kills.push(victim.nodeId);
      launch(slot);
    }
    appending = false;
    await appender;
    expect(froze).toBe(true);
    expect(kills.length).toBeGreaterThan(3);

    const total = served.reduce((n, e) => n + e.length, 0);
    await until(
      async () => {
        return (await eventCount(server, 'chaos')) >= total;
      },
      `all ${total} events in the table`,
      90_000,
    );
    // A replica started by the last kill may still be starting: it handles SIGTERM (and shuts down
    // cleanly) once it has joined the cluster, which its heartbeat row shows.
    await until(
      async () => {
        const { rows } = await server.query<{ node_id: string }>(
          'SELECT node_id FROM oktail_nodes WHERE node_id = ANY($1)',
          [live.map((r) => r!.nodeId)],
          'chaos',
        );
        return rows.length === live.length;
      },
      'every live replica joined',
      60_000,
    );
    for (const r of live) r!.child.kill('SIGTERM');
    const exits = await Promise.all(live.map((r) => r!.exited));
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);

    // Exactly once: each uuid of each org once, from the right source, and nothing else.
    const { rows } = await server.query<{ uuid: string; source: string }>(
      'SELECT uuid, source FROM okta_events',
      [],
      'chaos',
    );
    expect(rows.length).toBe(total);
    const bySource = new Map(rows.map((r) => [r.uuid, r.source]));
    served.forEach((events, i) => {
      const missing = events.filter((e) => bySource.get(e.uuid) !== `org${i}`);
      expect(missing.length, `events of org${i} missing or under another source`).toBe(0);
    });

    // Never two replicas polling one org at once, and every replica said who it was.
    for (const [i, org] of orgs.entries()) {
      const requests = org.emulator.requests.filter((e) => e.path === '/api/v1/logs');
      expect(requests.every((e) => nodeOf(e) !== null)).toBe(true);
      expect(overlappingRequests(requests), `org${i}`).toEqual([]);
    }
    // The frozen replica lost leases and took nothing over while frozen; others took over.
    const { rows: fences } = await server.query<{ fence: string }>(
      'SELECT fence FROM oktail_sources',
      [],
      'chaos',
    );
    expect(fences.some((f) => Number(f.fence) > 1)).toBe(true);
  }, 240_000);
});
