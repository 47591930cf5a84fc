import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRandom } from '../src/emulator/random.js';
import {
  collect,
  compareDelivery,
  readLines,
  readState,
  runCli,
  sleep,
  spawnCli,
  startOrg,
  writeConfig,
  type TestOrg,
} from './support/harness.js';

let org: TestOrg | undefined;
afterEach(async () => {
  await org?.stop();
  org = undefined;
});

const HOUR = 3600_000;

describe('crash recovery', () => {
  it('delivers every event exactly once to the file sink across SIGKILLs at random instants', async () => {
    org = await startOrg({ latencyMs: 10 });
    org.emulator.appendEvents(30_000, { publishedStart: Date.now() - HOUR, seed: 3, outOfOrder: 0.05 });
    org.emulator.randomFaults({
      probability: 0.1,
      seed: 11,
      kinds: [{ kind: 'status', status: 500 }, { kind: 'reset' }, { kind: 'truncate-json' }],
    });
    const { file, out } = await writeConfig(org, {
      startFrom: new Date(Date.now() - 2 * HOUR).toISOString(),
    });
    const env = { OKTA_API_TOKEN: org.token };
    const random = createRandom(20261125);

    let kills = 0;
    let truncations = 0;
    for (let round = 0; round < 20; round++) {
      // New and late events keep arriving between crashes.
      if (round % 3 === 1) {
        org.emulator.appendEvents(700, { publishedStart: Date.now() - HOUR / 2, outOfOrder: 0.3 });
      }
      const started = performance.now();
      const child = spawnCli(['run', '--once', '-c', file], env);
      const done = collect(child, started, 60_000);
      await sleep(300 + random.int(1500));
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        kills++;
      }
      const result = await done;
      if (result.stderr.includes('Removed bytes written after the last checkpoint')) truncations++;
      if (result.signal !== 'SIGKILL') expect(result.code, result.stderr).toBe(0);
      // After every crash the part of the file the checkpoint covers is a duplicate-free, gap-free prefix
      // of what Okta served (bytes past it may be a torn write: the next start cuts them off).
      // A run killed before its first commit leaves no checkpoint: nothing is covered yet.
      const committed = (await readState(org).catch(() => null))?.sinks.archive?.length ?? 0;
      const text = (await readFile(out).catch(() => Buffer.alloc(0))).subarray(0, committed).toString('utf8');
      expect(text === '' || text.endsWith('\n')).toBe(true);
      const lines = text === '' ? [] : text.slice(0, -1).split('\n');
      const served = org.emulator.allEvents().slice(0, lines.length);
      expect(compareDelivery(lines, served)).toBeNull();
    }

    org.emulator.randomFaults(null);
    const final = await runCli(['run', '--once', '-c', file], { env });
    expect(final.code, final.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
    expect(kills).toBeGreaterThanOrEqual(10);
    console.log(`crash loop: ${kills} SIGKILLs, ${truncations} restarts rolled back uncommitted bytes`);
  }, 180_000);

  it('cuts off a page that was written but not committed, and fetches it again', async () => {
    org = await startOrg();
    org.emulator.appendEvents(1000, { publishedStart: Date.now() - HOUR, seed: 4 });
    const { file, out } = await writeConfig(org, {
      startFrom: new Date(Date.now() - 2 * HOUR).toISOString(),
    });
    const env = { OKTA_API_TOKEN: org.token };
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
