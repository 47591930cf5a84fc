import { describe, expect, it } from 'vitest';
import {
  HOUR,
  ago,
  compareDelivery,
  readLines,
  readState,
  runCli,
  useOrg,
  writeConfig,
  type TestOrg,
} from './support/harness.js';

let org: TestOrg | undefined;
const startOrg = useOrg();

describe('oktail run --once against the Okta emulator', () => {
  it('delivers a backlog byte for byte plus the tag, in the order Okta returned it', async () => {
    org = await startOrg();
    org.emulator.appendEvents(2500, { publishedStart: Date.now() - HOUR, seed: 1 });
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR) });

    const result = await runCli(['run', '--once', '-c', file], { env: org.env });

    expect(result.code, result.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
  });

  it('spends no request on an empty page: a short page ends the cycle', async () => {
    org = await startOrg();
    org.emulator.appendEvents(2500, { publishedStart: Date.now() - HOUR });
    const { file } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    const env = org.env;

    await runCli(['run', '--once', '-c', file], { env });
    expect(org.emulator.stats().requests).toBe(3);
    await runCli(['run', '--once', '-c', file], { env });
    expect(org.emulator.stats().requests).toBe(4);
  });

  it('follows the cursor, not the clock: events sharing a millisecond across a page boundary all arrive once', async () => {
    org = await startOrg();
    // Runs of 7 events per millisecond straddle every 1000-event page boundary.
    org.emulator.appendEvents(3000, { publishedStart: Date.now() - HOUR, sameMillisecondGroups: 7 });
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR) });

    const result = await runCli(['run', '--once', '-c', file], { env: org.env });

    expect(result.code, result.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
  });

  it('keeps late events whose published time is older than events already delivered', async () => {
    org = await startOrg();
    org.emulator.appendEvents(1500, { publishedStart: Date.now() - HOUR, outOfOrder: 0.2 });
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    const env = org.env;
    await runCli(['run', '--once', '-c', file], { env });
    const lastPublished = (await readState(org)).sources.okta!.state.last_published as string;

    // Delayed inside Okta: persisted now, published half an hour before what was already delivered.
    org.emulator.appendEvents(40, { publishedStart: Date.parse(lastPublished) - HOUR / 2 });
    const result = await runCli(['run', '--once', '-c', file], { env });

    expect(result.code, result.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
  });

  it('resumes from its checkpoint after a restart and ignores a changed start_from', async () => {
    org = await startOrg();
    org.emulator.appendEvents(1200, { publishedStart: Date.now() - HOUR });
    const first = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    const env = org.env;
    await runCli(['run', '--once', '-c', first.file], { env });

    org.emulator.appendEvents(800);
    // Pointing start_from elsewhere must not re-read or skip anything: the checkpoint wins.
    const second = await writeConfig(org, { startFrom: ago(10 * 60_000) });
    const result = await runCli(['run', '--once', '-c', second.file], { env });

    expect(result.code, result.stderr).toBe(0);
    expect(compareDelivery(await readLines(second.out), org.emulator.allEvents())).toBeNull();
    const state = await readState(org);
    expect(state.sources.okta!.state.next).toMatch(new RegExp(`^${org.origin}/api/v1/logs\\?`));
  });

  it('starts from now when start_from is absent, fixed at the first start', async () => {
    org = await startOrg();
    org.emulator.appendEvents(50, { publishedStart: Date.now() - HOUR, persistedAt: Date.now() - HOUR });
    const { file, out } = await writeConfig(org);
    const env = org.env;
    await runCli(['run', '--once', '-c', file], { env });
    expect(await readLines(out)).toEqual([]);

    const fresh = org.emulator.appendEvents(5);
    await runCli(['run', '--once', '-c', file], { env });
    expect((await readLines(out)).map((l) => (JSON.parse(l) as { uuid: string }).uuid)).toEqual(
      fresh.map((e) => e.uuid),
    );
  });

  it('writes to stdout and a file from the same source', async () => {
    org = await startOrg();
    org.emulator.appendEvents(10, { publishedStart: Date.now() - HOUR });
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR), sinks: 'both' });

    const result = await runCli(['run', '--once', '-c', file], { env: org.env });

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split('\n').filter(Boolean)).toEqual(await readLines(out));
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
  });
});
