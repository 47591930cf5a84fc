/*
 * Scale scenario (`--only scale`): many orgs in one process, and replicas sharing orgs through PostgreSQL.
 *
 * 1. One process, the file backend, 50 emulated orgs: the backfill of every org at once (events/s), and
 *    the resident memory of an idle process with 1 org against one with 51 (memory per extra idle org).
 * 2. Three replicas of one config (state.backend: postgres, a postgres sink in the same database) sharing
 *    30 orgs: the backfill (events/s until every event is in the table), then SIGKILLs of the replica
 *    owning the most sources, each timed until the database shows all of its sources leased by the others
 *    (takeover time), the killed replica started again before the next kill.
 *
 * The emulators run in this process (one shared test PKI, one HTTPS server per org); the collectors are
 * separate processes. Needs PostgreSQL's server binaries (Debian's postgresql package), as the tests do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OktaEmulator } from '../src/emulator/emulator.js';
import { generateEvents } from '../src/emulator/events.js';
import { createTestPki, writePki } from '../src/emulator/pki.js';
import { PostgresServer } from '../test/support/postgres.js';
import type { Machine } from './results.js';

export interface ScaleResult {
  scenario: 'scale';
  machine: Machine;
  single: {
    orgs: number;
    eventsPerOrg: number;
    backfillMs: number;
    eventsPerSec: number;
    idleRssMb: { oneOrg: number; manyOrgs: number; orgs: number };
    rssPerExtraOrgKb: number;
  };
  cluster: {
    replicas: number;
    orgs: number;
    eventsPerOrg: number;
    leaseSecs: number;
    backfillMs: number;
    eventsPerSec: number;
    takeoverMs: number[];
    takeoverMedianMs: number;
    takeoverMaxMs: number;
  };
}

interface Org {
  emulator: OktaEmulator;
  domain: string;
  token: string;
}

const CLI = (root: string) => join(root, 'bin', 'oktail.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`scale: timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function startOrgs(
  n: number,
  eventsPerOrg: number,
  dir: string,
): Promise<{ orgs: Org[]; caFile: string }> {
  const pki = await createTestPki();
  const files = await writePki(pki, join(dir, 'pki'));
  const orgs: Org[] = [];
  for (let i = 0; i < n; i++) {
    const token = `00scale${i}x${Math.random().toString(36).slice(2)}`;
    const emulator = new OktaEmulator({ tls: pki.server, tokens: [token], keepAliveTimeoutMs: 600_000 });
    const { domain } = await emulator.start();
    if (eventsPerOrg > 0) {
      emulator.append(
        generateEvents(eventsPerOrg, { seed: 500 + i, publishedStart: Date.UTC(2026, 0, 1), stepMs: 7 }),
      );
    }
    orgs.push({ emulator, domain, token });
  }
  return { orgs, caFile: files.caFile };
}

function sourcesYaml(orgs: readonly Org[], caFile: string, intervalSecs: number): string[] {
  return orgs.flatMap((org, i) => [
    `  org${i}:`,
    '    type: okta',
    `    domain: "${org.domain}"`,
    `    interval_secs: ${intervalSecs}`,
    '    start_from: 2025-12-31T00:00:00Z',
    '    auth:',
    `      token: \${TOKEN_${i}}`,
    '    tls:',
    '      enabled: true',
    `      ca_file: ${JSON.stringify(caFile)}`,
  ]);
}

function tokens(orgs: readonly Org[]): Record<string, string> {
  return Object.fromEntries(orgs.map((o, i) => [`TOKEN_${i}`, o.token]));
}

function spawnOktail(root: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [CLI(root), ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr.resume();
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('close', (code) => resolve(code));
  });

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
}

/** Lines in an NDJSON file, counted without holding it as text. */
async function lines(path: string): Promise<number> {
  const data = await readFile(path).catch(() => Buffer.alloc(0));
  let n = 0;
  for (let at = data.indexOf(10); at !== -1; at = data.indexOf(10, at + 1)) n++;
  return n;
}

/** A file-backend config with one file sink per org (so each org's output is checked separately). */
async function singleConfig(
  dir: string,
  orgs: readonly Org[],
  caFile: string,
  intervalSecs: number,
): Promise<string> {
  const file = join(dir, 'single.yaml');
  await writeFile(
    file,
    [
      `data_dir: ${JSON.stringify(join(dir, 'data'))}`,
      'sources:',
      ...sourcesYaml(orgs, caFile, intervalSecs),
      'sinks:',
      '  out:',
      '    type: file',
      `    inputs: [${orgs.map((_, i) => `org${i}`).join(', ')}]`,
      `    path: ${JSON.stringify(join(dir, 'out.ndjson'))}`,
    ].join('\n') + '\n',
  );
  return file;
}

async function single(root: string, workDir: string, orgCount: number, eventsPerOrg: number) {
  // Backfill: every org at once, `run --once` until each is caught up.
  const dir = join(workDir, 'scale-single');
  await mkdir(dir, { recursive: true });
  const { orgs, caFile } = await startOrgs(orgCount, eventsPerOrg, dir);
  try {
    const file = await singleConfig(dir, orgs, caFile, 60);
    const started = performance.now();
    const code = await exited(spawnOktail(root, ['run', '-c', file, '--once', '-q'], tokens(orgs)));
    const backfillMs = performance.now() - started;
    const written = await lines(join(dir, 'out.ndjson'));
    if (code !== 0 || written !== orgCount * eventsPerOrg) {
      throw new Error(
        `scale: the backfill exited ${code} with ${written} of ${orgCount * eventsPerOrg} events`,
      );
    }
    return { backfillMs, eventsPerSec: Math.round((written / backfillMs) * 1000) };
  } finally {
    for (const org of orgs) await org.emulator.stop();
  }
}

/** Resident memory of an idle `run` with `n` orgs, once every org was polled a few times. */
async function idleRss(root: string, workDir: string, n: number): Promise<number> {
  const dir = join(workDir, `scale-idle-${n}`);
  await mkdir(dir, { recursive: true });
  const { orgs, caFile } = await startOrgs(n, 0, dir);
  try {
    const file = await singleConfig(dir, orgs, caFile, 10);
    const child = spawnOktail(root, ['run', '-c', file, '-q'], tokens(orgs));
    try {
      await until(
        'two idle cycles of every org',
        () => orgs.every((o) => o.emulator.requests.length >= 2),
        120_000,
      );
      // The median of a few samples over a cycle: the garbage collector moves RSS up and down.
      const samples: number[] = [];
      for (let i = 0; i < 5; i++) {
        samples.push(await rssKb(child.pid!));
        await sleep(1000);
      }
      samples.sort((a, b) => a - b);
      return samples[2]!;
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
  } finally {
    for (const org of orgs) await org.emulator.stop();
  }
}

async function cluster(root: string, workDir: string, orgCount: number, eventsPerOrg: number, kills: number) {
  const dir = join(workDir, 'scale-cluster');
  await mkdir(dir, { recursive: true });
  const leaseSecs = 5;
  const server = new PostgresServer();
  await server.start();
  const { orgs, caFile } = await startOrgs(orgCount, eventsPerOrg, dir);
  const replicas = new Map<string, ChildProcess>();
  try {
    const url = await server.createDatabase('oktail', 'oktail', 'bench-pw');
    const file = join(dir, 'cluster.yaml');
    await writeFile(
      file,
      [
        'state:',
        '  backend: postgres',
        '  url: ${PG_URL}',
        `  lease_secs: ${leaseSecs}`,
        '  node_id: ${NODE_ID}',
        'sources:',
        ...sourcesYaml(orgs, caFile, 10),
        'sinks:',
        '  db:',
        '    type: postgres',
        `    inputs: [${orgs.map((_, i) => `org${i}`).join(', ')}]`,
        '    url: ${PG_URL}',
      ].join('\n') + '\n',
    );
    const env = { ...tokens(orgs), PG_URL: url };
    let incarnation = 0;
    const launch = () => {
      const id = `r${++incarnation}`;
      replicas.set(
        id,
        spawnOktail(root, ['run', '-c', file, '-q', '--log-format', 'json'], { ...env, NODE_ID: id }),
      );
    };
    const count = async (sql: string, params: unknown[] = []) => {
      const { rows } = await server
        .query<{ n: string }>(sql, params, 'oktail')
        .catch(() => ({ rows: [{ n: '0' }] }));
      return Number(rows[0]!.n);
    };
    const total = orgCount * eventsPerOrg;
    const started = performance.now();
    for (let i = 0; i < 3; i++) launch();
    await until(
      'every event in the table',
      async () => (await count('SELECT count(*) AS n FROM okta_events')) >= total,
      600_000,
    );
    const backfillMs = performance.now() - started;

    const takeoverMs: number[] = [];
    for (let k = 0; k < kills; k++) {
      const { rows } = await server.query<{ owner: string; n: string }>(
        'SELECT owner, count(*) AS n FROM oktail_sources WHERE owner IS NOT NULL AND lease_expires_at > now() ' +
          'GROUP BY owner ORDER BY count(*) DESC, owner LIMIT 1',
        [],
        'oktail',
      );
      const victim = rows[0]!.owner;
      const child = replicas.get(victim)!;
      child.kill('SIGKILL');
      const killed = performance.now();
      await exited(child);
      replicas.delete(victim);
      await until(
        `the sources of ${victim} taken over`,
        async () =>
          (await count(
            'SELECT count(*) AS n FROM oktail_sources WHERE owner IS NOT NULL AND owner <> $1 AND lease_expires_at > now()',
            [victim],
          )) === orgCount,
        120_000,
      );
      takeoverMs.push(Math.round(performance.now() - killed));
      launch();
      // Let the new replica join and the balance settle before the next kill.
      await sleep(3 * leaseSecs * 1000);
    }
    const sorted = [...takeoverMs].sort((a, b) => a - b);
    return {
      replicas: 3,
      orgs: orgCount,
      eventsPerOrg,
      leaseSecs,
      backfillMs: Math.round(backfillMs),
      eventsPerSec: Math.round((total / backfillMs) * 1000),
      takeoverMs,
      takeoverMedianMs: sorted[Math.floor(sorted.length / 2)]!,
      takeoverMaxMs: sorted.at(-1)!,
    };
  } finally {
    for (const child of replicas.values()) child.kill('SIGKILL');
    await Promise.all([...replicas.values()].map(exited));
    for (const org of orgs) await org.emulator.stop();
    await server.stop();
  }
}

export async function scale(options: {
  machine: Machine;
  root: string;
  workDir: string;
  quick: boolean;
}): Promise<ScaleResult> {
  const { root, workDir, quick } = options;
  const orgs = quick ? 10 : 50;
  const eventsPerOrg = quick ? 500 : 2000;
  console.log(`scale: one process, ${orgs} orgs x ${eventsPerOrg} events`);
  const backfill = await single(root, workDir, orgs, eventsPerOrg);
  console.log(`scale: idle memory, 1 org and ${orgs + 1} orgs`);
  const one = await idleRss(root, workDir, 1);
  const many = await idleRss(root, workDir, orgs + 1);
  const clusterOrgs = quick ? 9 : 30;
  console.log(`scale: 3 replicas, ${clusterOrgs} orgs`);
  const shared = await cluster(root, workDir, clusterOrgs, quick ? 500 : 2000, quick ? 2 : 5);
  return {
    scenario: 'scale',
    machine: options.machine,
    single: {
      orgs,
      eventsPerOrg,
      backfillMs: Math.round(backfill.backfillMs),
      eventsPerSec: backfill.eventsPerSec,
      idleRssMb: {
        oneOrg: Math.round(one / 102.4) / 10,
        manyOrgs: Math.round(many / 102.4) / 10,
        orgs: orgs + 1,
      },
      rssPerExtraOrgKb: Math.round((many - one) / orgs),
    },
    cluster: shared,
  };
}

/** The section of docs/performance.md. */
export function scaleSection(r: ScaleResult): string[] {
  const c = r.cluster;
  const s = r.single;
  const load = r.machine.loadBefore.map((n) => n.toFixed(1)).join(', ');
  return [
    '## Scale: many orgs, and replicas sharing them',
    '',
    `Measured ${r.machine.date.slice(0, 16).replace('T', ' ')} UTC on ${r.machine.cores} cores shared with other work ` +
      `(load averages ${load} at the start): the rates below are lower bounds for this machine, the memory and ` +
      'takeover figures depend little on it. The emulators run in the bench process, the collectors in their own.',
    '',
    `One process (file backend) collecting ${s.orgs} emulated orgs at once: the backfill of ${s.eventsPerOrg} events per org ` +
      `(\`run --once\`) took ${(s.backfillMs / 1000).toFixed(1)} s, **${s.eventsPerSec.toLocaleString('en-US')} events/s**. Idle, ` +
      `the process holds ${s.idleRssMb.oneOrg} MB resident with 1 org and ${s.idleRssMb.manyOrgs} MB with ${s.idleRssMb.orgs}: ` +
      `**${s.rssPerExtraOrgKb} KB per extra idle org** (goal: under 1 MB).`,
    '',
    `${c.replicas} replicas (state.backend: postgres, \`lease_secs: ${c.leaseSecs}\`, a postgres sink in the same database, ` +
      `so each page and its checkpoint are one transaction) sharing ${c.orgs} orgs: the backfill of ${c.eventsPerOrg} events ` +
      `per org took ${(c.backfillMs / 1000).toFixed(1)} s, **${c.eventsPerSec.toLocaleString('en-US')} events/s** into the table. ` +
      `Takeover after a SIGKILL of the replica owning the most sources, until all its sources were leased by the others ` +
      `(${c.takeoverMs.length} kills): median **${(c.takeoverMedianMs / 1000).toFixed(1)} s**, max **${(c.takeoverMaxMs / 1000).toFixed(1)} s** ` +
      `(goal: within lease_secs + 5 s = ${c.leaseSecs + 5} s).`,
    '',
  ];
}
