import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOktailError } from '../core/errors.js';
import { DataDirLock, LOCK_FILE, parseHolder } from './lock.js';

let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oktail-lock-'));
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(child.stdout);
}

function lockText(pid: number, extra: Record<string, unknown> = {}): string {
  return (
    JSON.stringify({ pid, command: 'run', started_at: '2026-01-01T00:00:00.000Z', nonce: 'x', ...extra }) +
    '\n'
  );
}

async function expectLocked(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(isOktailError(err, 'STATE_LOCKED')).toBe(true);
  expect((err as Error).message).toMatch(pattern);
}

describe('DataDirLock', () => {
  it('writes the holder pid into data_dir/lock and removes it on release', async () => {
    const lock = await DataDirLock.acquire(dir, 'run');
    const holder = parseHolder(await readFile(join(dir, LOCK_FILE), 'utf8'));
    expect(holder).toMatchObject({ pid: process.pid, command: 'run' });
    await lock.release();
    await lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('creates a missing data_dir', async () => {
    const nested = join(dir, 'a', 'b');
    const lock = await DataDirLock.acquire(nested, 'run');
    expect(existsSync(join(nested, LOCK_FILE))).toBe(true);
    await lock.release();
  });

  it('refuses a second holder in the same process', async () => {
    const lock = await DataDirLock.acquire(dir, 'run');
    try {
      await expectLocked(
        DataDirLock.acquire(dir, 'state show'),
        new RegExp(`in use by oktail run \\(pid ${process.pid},`),
      );
    } finally {
      await lock.release();
    }
    const again = await DataDirLock.acquire(dir, 'state show');
    await again.release();
  });

  it('refuses while another live process holds the lock, naming its pid', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    children.push(child);
    await writeFile(join(dir, LOCK_FILE), lockText(child.pid!));
    await expectLocked(
      DataDirLock.acquire(dir, 'run'),
      new RegExp(`data_dir ${resolve(dir)} is in use by oktail run \\(pid ${child.pid},.*stop it first`),
    );
    expect(await readFile(join(dir, LOCK_FILE), 'utf8')).toBe(lockText(child.pid!));
  });

  it('takes over a lock left by a process that no longer runs', async () => {
    await writeFile(join(dir, LOCK_FILE), lockText(deadPid()));
    const lock = await DataDirLock.acquire(dir, 'run');
    expect(parseHolder(await readFile(join(dir, LOCK_FILE), 'utf8'))!.pid).toBe(process.pid);
    await lock.release();
  });

  it('takes over a lock with our own pid that this process does not hold (a restarted container)', async () => {
    await writeFile(join(dir, LOCK_FILE), lockText(process.pid));
    const lock = await DataDirLock.acquire(dir, 'run');
    await lock.release();
  });

  it.runIf(existsSync('/proc/self/stat'))('sees through a reused pid by its start time', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    children.push(child);
    await writeFile(join(dir, LOCK_FILE), lockText(child.pid!, { proc_start: '1' }));
    const lock = await DataDirLock.acquire(dir, 'run');
    await lock.release();
  });

  it.runIf(existsSync('/proc/sys/kernel/random/boot_id'))(
    'takes over a lock from before a reboot',
    async () => {
      await writeFile(join(dir, LOCK_FILE), lockText(process.ppid, { boot_id: 'another-boot' }));
      const lock = await DataDirLock.acquire(dir, 'run');
      await lock.release();
    },
  );

  it('waits for a lock that is still being written, and takes over one that never was', async () => {
    const path = join(dir, LOCK_FILE);
    await writeFile(path, '');
    const old = new Date(Date.now() - 60_000);
    await utimes(path, old, old);
    const lock = await DataDirLock.acquire(dir, 'run');
    await lock.release();
  });

  it('lets exactly one of many concurrent takeovers in this process win', async () => {
    await writeFile(join(dir, LOCK_FILE), lockText(deadPid()));
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => DataDirLock.acquire(dir, 'run')),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results)
      if (r.status === 'rejected') expect(isOktailError(r.reason, 'STATE_LOCKED')).toBe(true);
    await (won[0] as PromiseFulfilledResult<DataDirLock>).value.release();
  });

  it('never lets two processes hold the lock at once while they race to take over a stale one', async () => {
    await writeFile(join(dir, LOCK_FILE), lockText(deadPid()));
    const moduleUrl = new URL('./lock.ts', import.meta.url).href;
    const startAt = Date.now() + 1500;
    // Each process spins until the same instant, then races; a winner holds the lock for a while.
    const script = `
      import { DataDirLock } from ${JSON.stringify(moduleUrl)};
      while (Date.now() < ${startAt}) {}
      try {
        const lock = await DataDirLock.acquire(${JSON.stringify(dir)}, 'run');
        const from = Date.now();
        await new Promise((r) => setTimeout(r, 300));
        const to = Date.now();
        await lock.release();
        console.log(JSON.stringify({ won: true, from, to }));
      } catch (err) {
        console.log(JSON.stringify({ won: false, code: err.code }));
      }`;
    const runs = Array.from(
      { length: 5 },
      () =>
        new Promise<string>((done, fail) => {
          const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          children.push(child);
          let out = '';
          child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
          child.on('error', fail);
          child.on('close', () => done(out.trim()));
        }),
    );
    const results = (await Promise.all(runs)).map(
      (line) => JSON.parse(line) as { won: boolean; from?: number; to?: number; code?: string },
    );
    const winners = results.filter((r) => r.won).sort((a, b) => a.from! - b.from!);
    expect(winners.length).toBeGreaterThanOrEqual(1);
    for (const loser of results.filter((r) => !r.won)) expect(loser.code).toBe('STATE_LOCKED');
    for (let i = 1; i < winners.length; i++)
      expect(winners[i]!.from!).toBeGreaterThanOrEqual(winners[i - 1]!.to!);
  });
});
