import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRandom } from '../src/emulator/random.js';
import {
  HOUR,
  KILL_POINTS,
  ago,
  compareDelivery,
  readLines,
  readState,
  runCli,
  runKilledAt,
  useOrg,
  writeConfig,
} from './support/harness.js';

const startOrg = useOrg();
/** The built-in script's page size: a shorter page ends a `--once` run. */
const PAGE = 1000;
const KILLS = 20;

describe('crash recovery', () => {
  it('delivers every event exactly once to the file sink across SIGKILLs at every stage of a page', async () => {
    const org = await startOrg({ latencyMs: 10 });
    org.emulator.appendEvents(5_000, { publishedStart: Date.now() - HOUR, seed: 3, outOfOrder: 0.05 });
    org.emulator.randomFaults({
      probability: 0.1,
      seed: 11,
      kinds: [{ kind: 'status', status: 500 }, { kind: 'reset' }, { kind: 'truncate-json' }],
    });
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    const random = createRandom(20261125);

    let kills = 0;
    let truncations = 0;
    let committedLines = 0;
    const points = new Map<string, number>();
    for (let round = 0; round < KILLS; round++) {
      // New and late events keep arriving between crashes.
      if (round % 3 === 1) {
        org.emulator.appendEvents(700, { publishedStart: Date.now() - HOUR / 2, outOfOrder: 0.3 });
      }
      // Killed at its nth request, with more than n full pages ahead of the checkpoint: every page up to
      // that request is full, so the run is still going (waiting for a held answer) when it is killed.
      const nth = 1 + random.int(2);
      const point = random.pick(KILL_POINTS);
      const backlog = org.emulator.eventCount - committedLines;
      if (backlog < (nth + 1) * PAGE) {
        org.emulator.appendEvents((nth + 1) * PAGE - backlog + PAGE / 2, {
          publishedStart: Date.now() - HOUR / 4,
        });
      }
      const result = await runKilledAt(org, ['run', '--once', '-c', file], { nth, point, sinkFile: out });
      expect(result.signal, result.stderr).toBe('SIGKILL');
      kills++;
      points.set(point, (points.get(point) ?? 0) + 1);
      if (result.stderr.includes('Removed bytes written after the last checkpoint')) truncations++;
      // After every crash the part of the file the checkpoint covers is a duplicate-free, gap-free prefix
      // of what Okta served (bytes past it may be a torn write: the next start cuts them off).
      // A run killed before its first commit leaves no checkpoint: nothing is covered yet.
      const committed = (await readState(org).catch(() => null))?.sinks.archive?.length ?? 0;
      const text = (await readFile(out).catch(() => Buffer.alloc(0))).subarray(0, committed).toString('utf8');
      expect(text === '' || text.endsWith('\n')).toBe(true);
      const lines = text === '' ? [] : text.slice(0, -1).split('\n');
      const served = org.emulator.allEvents().slice(0, lines.length);
      expect(compareDelivery(lines, served)).toBeNull();
      committedLines = lines.length;
    }

    org.emulator.randomFaults(null);
    const final = await runCli(['run', '--once', '-c', file], { env: org.env });
    expect(final.code, final.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
    expect(kills).toBe(KILLS);
    expect([...points.keys()].sort()).toEqual([...KILL_POINTS].sort());
    const where = [...points].map(([p, n]) => `${n} ${p}`).join(', ');
    console.log(
      `crash loop: ${kills} SIGKILLs (${where}), ${truncations} restarts rolled back uncommitted bytes`,
    );
    // A deadline for a hang only: every round waits for the collector's progress, which a busy machine slows.
  }, 600_000);

  it('cuts off a page that was written but not committed, and fetches it again', async () => {
    const org = await startOrg();
    org.emulator.appendEvents(1000, { publishedStart: Date.now() - HOUR, seed: 4 });
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    const env = org.env;
    const statePath = join(org.dir, 'data', 'state.json');
    expect((await runCli(['run', '--once', '-c', file], { env })).code).toBe(0);
    const committedBefore = await readFile(statePath);

    org.emulator.appendEvents(500);
    expect((await runCli(['run', '--once', '-c', file], { env })).code).toBe(0);
    // The state a crash between the file write and the commit leaves: the file holds the 500 new events,
    // the checkpoint does not.
    await writeFile(statePath, committedBefore);

    const result = await runCli(['run', '--once', '-c', file], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('Removed bytes written after the last checkpoint');
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
  });
});
