import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventRecord } from '../src/emulator/events.js';
import {
  HOUR,
  KILL_POINTS,
  ago,
  compareDelivery,
  readLines,
  runCli,
  runKilledAt,
  useOrg,
  writeConfig,
  type TestOrg,
} from './support/harness.js';

const startOrg = useOrg();
const DAY = 24 * HOUR;
/** The built-in script's page size: a shorter page ends a `--once` run. */
const PAGE = 1000;
/** One event a minute: a page of 1000 covers about 17 hours, so most pages cross a midnight. */
const STEP = 60_000;

/** A config whose file sink writes one file per UTC day of `published`. */
async function datedConfig(org: TestOrg) {
  const outDir = join(org.dir, 'out');
  const template = join(outDir, '%Y', 'okta-%Y-%m-%d.ndjson');
  const { file } = await writeConfig(org, {
    startFrom: ago(HOUR),
    sinks: 'none',
    sinkLines: [
      '  archive:',
      '    type: file',
      '    inputs: [okta]',
      `    path: ${JSON.stringify(template)}`,
    ],
  });
  return { file, outDir };
}

/** Every dated file under `outDir`, by its day. */
async function datedFiles(outDir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const year of await readdir(outDir).catch(() => [] as string[])) {
    for (const name of await readdir(join(outDir, year))) {
      const m = /^okta-(\d{4}-\d{2}-\d{2})\.ndjson$/.exec(name);
      if (!m) throw new Error(`unexpected file ${name}`);
      expect(m[1]!.slice(0, 4)).toBe(year);
      files.set(m[1]!, join(outDir, year, name));
    }
  }
  return files;
}

/**
 * Checks that the dated files hold every served event exactly once, each in the file of its UTC day
 * and in the order Okta served them; returns the first difference or null.
 */
async function compareDated(outDir: string, served: readonly EventRecord[]): Promise<string | null> {
  const byDay = new Map<string, EventRecord[]>();
  for (const e of served) {
    const d = e.published.slice(0, 10);
    byDay.set(d, [...(byDay.get(d) ?? []), e]);
  }
  const files = await datedFiles(outDir);
  const extra = [...files.keys()].filter((d) => !byDay.has(d));
  if (extra.length > 0) return `files for days without events: ${extra.join(', ')}`;
  for (const [d, events] of byDay) {
    const path = files.get(d);
    if (!path) return `no file for ${d}`;
    const diff = compareDelivery(await readLines(path), events);
    if (diff !== null) return `${d}: ${diff}`;
  }
  return null;
}

async function totalSize(outDir: string): Promise<number> {
  let sum = 0;
  for (const path of (await datedFiles(outDir)).values()) sum += (await stat(path)).size;
  return sum;
}

/** Appends `count` events a minute apart from `from`, then a few late ones of the day before the last. */
function appendDays(org: TestOrg, from: number, count: number, seed: number): number {
  org.emulator.appendEvents(count, { publishedStart: from, stepMs: STEP, seed, outOfOrder: 0.05 });
  const last = from + (count - 1) * STEP;
  const midnight = Math.floor(last / DAY) * DAY;
  // Events Okta held back: published seconds before the last midnight, served after the next day's.
  org.emulator.appendEvents(3, { publishedStart: midnight - 5_000, stepMs: 1000, seed: seed + 1 });
  return last + STEP;
}

interface DatedState {
  sinks: { archive?: { files: Record<string, number>; current: string | null } };
}

describe('file sink with a dated path', () => {
  it('writes each event to the file of its published day, a page spanning midnight split in two', async () => {
    const org = await startOrg();
    const start = Math.floor(Date.now() / DAY) * DAY - 8 * DAY + 20 * HOUR;
    appendDays(org, start, 2500, 7);
    appendDays(org, start + 2500 * STEP, 1200, 8);
    const { file, outDir } = await datedConfig(org);

    const result = await runCli(['run', '--once', '-c', file], { env: org.env });
    expect(result.code, result.stderr).toBe(0);
    const served = org.emulator.allEvents();
    expect(await compareDated(outDir, served)).toBeNull();
    const files = await datedFiles(outDir);
    expect(files.size).toBeGreaterThanOrEqual(3);

    // The checkpoint names only what the last page touched and the newest day's file, not every day.
    const state = JSON.parse(await readFile(join(org.dir, 'data', 'state.json'), 'utf8')) as DatedState;
    const position = state.sinks.archive!;
    const newest = [...files.keys()].sort().at(-1)!;
    expect(position.current).toBe(files.get(newest));
    expect(Object.keys(position.files).length).toBeLessThan(files.size);
    for (const [path, length] of Object.entries(position.files)) expect((await stat(path)).size).toBe(length);

    // A later run adds days (and late events) and leaves the earlier days' files as they were.
    const before = await readFile(files.get([...files.keys()].sort()[0]!)!);
    appendDays(org, Math.floor(Date.now() / DAY) * DAY - 3 * DAY + 22 * HOUR, 200, 9);
    const again = await runCli(['run', '--once', '-c', file], { env: org.env });
    expect(again.code, again.stderr).toBe(0);
    expect(await compareDated(outDir, org.emulator.allEvents())).toBeNull();
    expect(await readFile(files.get([...files.keys()].sort()[0]!)!)).toEqual(before);
  }, 120_000);

  it('delivers every event exactly once across SIGKILLs at every stage of pages that cross days', async () => {
    const org = await startOrg({ latencyMs: 10 });
    let next = Math.floor(Date.now() / DAY) * DAY - 40 * DAY + 21 * HOUR;
    next = appendDays(org, next, 3000, 100);
    org.emulator.randomFaults({
      probability: 0.1,
      seed: 12,
      kinds: [{ kind: 'status', status: 500 }, { kind: 'reset' }, { kind: 'truncate-json' }],
    });
    const { file, outDir } = await datedConfig(org);
    const kills = 12;
    let rolledBack = 0;
    let removedFiles = 0;
    const count = (stderr: string) => {
      if (/Removed (bytes|a file) written after the last checkpoint/.test(stderr)) rolledBack++;
      removedFiles += stderr.split('Removed a file written after the last checkpoint').length - 1;
    };
    for (let round = 0; round < kills; round++) {
      const nth = 1 + (round % 2);
      const point = KILL_POINTS[round % KILL_POINTS.length]!;
      // Enough backlog that the run is still waiting for a held answer when it is killed. Counting the
      // lines in the files over-counts what is committed, so this errs on the side of more backlog.
      let written = 0;
      for (const path of (await datedFiles(outDir)).values()) {
        const bytes = await readFile(path);
        for (let at = bytes.indexOf(10); at !== -1; at = bytes.indexOf(10, at + 1)) written++;
      }
      const backlog = org.emulator.eventCount - written;
      if (backlog < (nth + 1) * PAGE) {
        next = appendDays(org, next, (nth + 1) * PAGE - backlog + PAGE / 2, 200 + round * 2);
      }
      const result = await runKilledAt(org, ['run', '--once', '-c', file], {
        nth,
        point,
        // "The page reaching the sink" is any dated file growing.
        sinkBytes: () => totalSize(outDir),
      });
      expect(result.signal, result.stderr).toBe('SIGKILL');
      count(result.stderr);
    }
    org.emulator.randomFaults(null);
    const final = await runCli(['run', '--once', '-c', file], { env: org.env });
    expect(final.code, final.stderr).toBe(0);
    count(final.stderr);
    expect(await compareDated(outDir, org.emulator.allEvents())).toBeNull();
    const days = (await datedFiles(outDir)).size;
    console.log(
      `dated crash loop: ${kills} SIGKILLs, ${org.emulator.eventCount} events in ${days} daily files, ` +
        `${rolledBack} restarts rolled back uncommitted writes (${removedFiles} new files removed)`,
    );
    expect(days).toBeGreaterThan(5);
  }, 600_000);
});
