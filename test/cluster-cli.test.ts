import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HOUR, runCli, until, useOrg, writeConfig } from './support/harness.js';
import { freePort } from './support/postgres.js';
import { eventCount, spawnReplica, useClusterDatabase, writeClusterConfig } from './support/cluster.js';

const { server, password, replicas, database, tempDir } = useClusterDatabase('cli');

const startOrg = useOrg();

async function owner(db: string, source: string): Promise<string | null> {
  const exists = await server.query<{ t: string | null }>(
    "SELECT to_regclass('oktail_sources') AS t",
    [],
    db,
  );
  if (exists.rows[0]!.t === null) return null;
  const { rows } = await server.query<{ owner: string | null }>(
    'SELECT owner FROM oktail_sources WHERE source = $1 AND lease_expires_at > now()',
    [source],
    db,
  );
  return rows[0]?.owner ?? null;
}

describe('state.backend: postgres in the config', () => {
  it('refuses a file or stdout sink and says why', async () => {
    const org = await startOrg();
    const { file } = await writeConfig(org, {
      sinks: 'both',
      top: ['state:', '  backend: postgres', `  url: postgres://oktail:\${PG_PASSWORD}@127.0.0.1:5/oktail`],
    });
    const result = await runCli(['validate', '-c', file], { env: { ...org.env, PG_PASSWORD: password } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /sinks\.archive\.type \(line \d+\): a file sink cannot be used with state\.backend: postgres/,
    );
    expect(result.stderr).toMatch(/sinks\.console\.type \(line \d+\): a stdout sink cannot be used/);
    expect(result.stderr).toContain('cannot follow it to another host');
    expect(result.stderr + result.stdout).not.toContain(password);
  });

  it('says in validate that the state is shared in PostgreSQL, without the password', async () => {
    const org = await startOrg();
    const { file } = await writeConfig(org, {
      sinks: 'none',
      sinkLines: ['  db:', '    type: http', '    inputs: [okta]', '    uri: https://127.0.0.1:9/ingest'],
      top: [
        'state:',
        '  backend: postgres',
        `  url: postgres://oktail:\${PG_PASSWORD}@127.0.0.1:5/oktail`,
        '  lease_secs: 20',
      ],
    });
    const result = await runCli(['validate', '-c', file], { env: { ...org.env, PG_PASSWORD: password } });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('state in PostgreSQL shared by replicas (lease 20 s)');
    expect(result.stderr + result.stdout).not.toContain(password);
  });
});

describe('oktail cluster status and state commands against PostgreSQL', () => {
  it('shows owners and fences, refuses a reset under a running owner, and works once it left', async () => {
    const db = await database();
    const dir = await tempDir();
    const orgs = [await startOrg(), await startOrg()];
    for (const org of orgs) org.emulator.appendEvents(50, { publishedStart: Date.now() - HOUR });
    const { file, env } = await writeClusterConfig({
      dir,
      orgs,
      url: db.url,
      leaseSecs: 5,
      startFrom: new Date(Date.now() - 2 * HOUR).toISOString(),
    });
    const replica = spawnReplica(file, 'alpha', env);
    replicas.push(replica);
    await until(
      async () => (await owner(db.name, 'org0')) === 'alpha' && (await owner(db.name, 'org1')) === 'alpha',
      'alpha owning both sources',
      60_000,
    );
    // Wait for the first pages to be committed, so `state show` has cursors to show.
    await until(async () => {
      return (await eventCount(server, db.name)) === 100;
    }, 'both backlogs in the table');

    const status = await runCli(['cluster', 'status', '-c', file], { env });
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('Replicas: 1 live');
    expect(status.stdout).toMatch(/alpha: live, heartbeat .*owns 2: org0, org1/);
    expect(status.stdout).toMatch(/org0: owned by alpha, lease expires in \d+ s; fence 1, committed /);
    expect(status.stdout).not.toContain(password);
    const json = JSON.parse((await runCli(['cluster', 'status', '-c', file, '--json'], { env })).stdout) as {
      replicas: { node_id: string; live: boolean }[];
      sources: { source: string; owner: string; fence: number; live: boolean }[];
    };
    expect(json.replicas).toMatchObject([{ node_id: 'alpha', live: true }]);
    expect(json.sources.map((s) => [s.source, s.owner, s.fence, s.live])).toEqual([
      ['org0', 'alpha', 1, true],
      ['org1', 'alpha', 1, true],
    ]);

    const show = await runCli(['state', 'show', '-c', file], { env });
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/source org0 \(127\.0\.0\.1:\d+\), committed /);
    const exported = await runCli(['state', 'export', '-c', file], { env });
    const checkpoint = JSON.parse(exported.stdout) as { sources: Record<string, unknown> };
    expect(Object.keys(checkpoint.sources)).toEqual(['org0', 'org1']);

    // The owner renews its lease: a reset would race its next commit, so it is refused.
    const refused = await runCli(['state', 'reset', 'org0', '-c', file], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Source org0 is being collected by replica alpha');

    // SIGTERM: the replica commits, releases its leases and leaves at once.
    replica.child.kill('SIGTERM');
    expect((await replica.exited).code).toBe(0);
    expect(await owner(db.name, 'org0')).toBeNull();
    const after = await runCli(['cluster', 'status', '-c', file], { env });
    expect(after.stdout).toContain('Replicas: 0 live');
    expect(after.stdout).toMatch(/org0: free; fence 1, committed /);

    const reset = await runCli(['state', 'reset', 'org0', '-c', file], { env });
    expect(reset.code).toBe(0);
    expect(reset.stdout).toContain('Reset source org0; the next run starts from');
    const { rows } = await server.query<{ state: unknown; fence: string; owner: string | null }>(
      "SELECT state, fence, owner FROM oktail_sources WHERE source = 'org0'",
      [],
      db.name,
    );
    // The reset took the lease (fence 2) and gave it back.
    expect(rows[0]).toEqual({ state: null, fence: '2', owner: null });

    const saved = join(dir, 'export.json');
    await writeFile(saved, exported.stdout);
    const refusedImport = await runCli(['state', 'import', saved, '-c', file], { env });
    expect(refusedImport.code).toBe(1);
    expect(refusedImport.stderr).toContain('already holds state (org1)');
    const imported = await runCli(['state', 'import', saved, '--force', '-c', file], { env });
    expect(imported.code).toBe(0);
    const again = JSON.parse((await runCli(['state', 'export', '-c', file], { env })).stdout) as unknown;
    expect(again).toEqual(JSON.parse(await readFile(saved, 'utf8')));
  }, 120_000);

  it('answers /ready with 200 on a standby that owns nothing, and counts owned sources in metrics', async () => {
    const db = await database();
    const dir = await tempDir();
    const org = await startOrg();
    const { file, env } = await writeClusterConfig({
      dir,
      orgs: [org],
      url: db.url,
      leaseSecs: 5,
      api: true,
    });
    const ports = [await freePort(), await freePort()];
    const a = spawnReplica(file, 'a', { ...env, API_PORT: String(ports[0]) });
    replicas.push(a);
    await until(async () => (await owner(db.name, 'org0')) === 'a', 'a owning the source', 60_000);
    const b = spawnReplica(file, 'b', { ...env, API_PORT: String(ports[1]) });
    replicas.push(b);
    const metricsOf = async (port: number) => {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => null);
      return res?.ok ? await res.text() : '';
    };
    await until(
      async () => (await metricsOf(ports[1]!)).includes('oktail_cluster_sources_owned 0'),
      "b's metrics",
    );
    await until(
      async () => (await metricsOf(ports[0]!)).includes('oktail_cluster_sources_owned 1'),
      "a's metrics",
    );
    const standby = await fetch(`http://127.0.0.1:${ports[1]}/ready`);
    expect(standby.status).toBe(200);
    expect(await standby.json()).toMatchObject({ status: 'ready', sources: [] });
    const owning = await fetch(`http://127.0.0.1:${ports[0]}/ready`);
    expect(await owning.json()).toMatchObject({ sources: [{ source: 'org0' }] });
    await until(
      async () => /oktail_cluster_lease_renewals_total [1-9]/.test(await metricsOf(ports[0]!)),
      'a renewal',
    );

    // a dies: b takes the source over after the lease and counts a takeover.
    a.child.kill('SIGKILL');
    await until(
      async () => (await metricsOf(ports[1]!)).includes('oktail_cluster_takeovers_total 1'),
      'the takeover',
      60_000,
    );
    expect(await metricsOf(ports[1]!)).toContain('oktail_cluster_sources_owned 1');
    b.child.kill('SIGTERM');
    expect((await b.exited).code).toBe(0);
  }, 120_000);
});
