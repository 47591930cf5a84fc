import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import {
  assertNoSecret,
  readState,
  runCli,
  spawnCli,
  startOrg,
  writeConfig,
  type TestOrg,
} from './support/harness.js';
import {
  elasticsearchEntry,
  fileEntry,
  httpEntry,
  splunkHecEntry,
  stdoutEntry,
  type ContractDestination,
  type ContractEntry,
} from './support/sink-contract.js';
import { postgresEntry, s3Entry, syslogEntry } from './support/sink-contract-servers.js';

/*
 * The contract every sink keeps, run through the real CLI against the Okta emulator. A sink joins with
 * one entry in this table (see test/support/sink-contract.ts).
 */
const ENTRIES: ContractEntry[] = [
  fileEntry,
  stdoutEntry,
  httpEntry,
  splunkHecEntry,
  elasticsearchEntry,
  postgresEntry,
  syslogEntry,
  s3Entry,
];

const HOUR = 3600_000;
const EVENTS = 2500;

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function start(args: string[], env: Record<string, string>): Running {
  const child = spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

/** Polls until `check` holds; a generous deadline, never a fixed sleep. */
async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function expectAll(
  held: string[],
  expected: string[],
  guarantee: ContractEntry['guarantee'],
  dest: ContractDestination,
): void {
  expect(new Set(held).size, 'no event lost').toBe(expected.length);
  expect(held.every((u) => expected.includes(u))).toBe(true);
  if (guarantee !== 'exactly-once') return;
  if (!dest.unorderedWithinPage) {
    expect(held).toEqual(expected);
    return;
  }
  // Each event once, and every page's events after the previous page's (pages are 1000 events).
  expect(held).toHaveLength(expected.length);
  const pageOf = (u: string) => Math.floor(expected.indexOf(u) / 1000);
  const pages = held.map(pageOf);
  expect(pages).toEqual([...pages].sort((a, b) => a - b));
}

describe.each(ENTRIES)('sink contract: $type', (entry) => {
  let org: TestOrg | undefined;
  let dest: ContractDestination | undefined;
  let running: Running | undefined;
  afterEach(async () => {
    running?.child.kill('SIGKILL');
    await running?.exit;
    running = undefined;
    await dest?.stop();
    await org?.stop();
    org = undefined;
    dest = undefined;
  });

  async function setup() {
    org = await startOrg();
    org.emulator.appendEvents(EVENTS, { publishedStart: Date.now() - HOUR, seed: 7 });
    dest = await entry.start(org);
    const { file } = await writeConfig(org, {
      startFrom: new Date(Date.now() - 2 * HOUR).toISOString(),
      sinks: 'none',
      sinkLines: dest.sinkLines,
    });
    const env = { OKTA_API_TOKEN: org.token, ...dest.env };
    const expected = org.emulator.allEvents().map((e) => e.uuid);
    return { org, dest, file, env, expected };
  }

  it('delivers every event, and the ack moves the checkpoint past them', async () => {
    const { org, dest, file, env, expected } = await setup();
    const first = await runCli(['run', '--once', '-c', file], { env });
    expect(first.code, first.stderr).toBe(0);
    expectAll(await dest.read(first.stdout, expected.length), expected, entry.guarantee, dest);
    const requests = org.emulator.stats().requests;

    const second = await runCli(['run', '--once', '-c', file], { env });
    expect(second.code, second.stderr).toBe(0);
    // One request finds nothing new: the checkpoint is past every event, so none is sent again.
    expect(org.emulator.stats().requests).toBe(requests + 1);
    expect((await dest.read(second.stdout)).length).toBe(entry.type === 'stdout' ? 0 : EVENTS);
  });

  it('on SIGTERM flushes what the destination accepted and commits it', async () => {
    const { dest, file, env, expected } = await setup();
    running = start(['run', '-c', file], env);
    const r = running;
    await until('every event at the destination', async () => (await dest.read(r.stdout())).length >= EVENTS);
    r.child.kill('SIGTERM');
    expect(await r.exit, r.stderr()).toBe(0);
    assertNoSecret(r.stdout() + r.stderr(), 'output');
    expectAll(await dest.read(r.stdout()), expected, entry.guarantee, dest);

    const again = await runCli(['run', '--once', '-c', file], { env });
    expect(again.code, again.stderr).toBe(0);
    expect((await dest.read(again.stdout)).length).toBe(entry.type === 'stdout' ? 0 : EVENTS);
  });

  it('holds the source back while the destination is down, commits nothing, and loses nothing', async (ctx) => {
    const { org, dest, file, env, expected } = await setup();
    if (!dest.down || !dest.up) return ctx.skip();
    await dest.down();
    running = start(['run', '--log-level', 'debug', '-c', file], env);
    const r = running;
    await until('the failure warning', () => r.stderr().includes('retrying until the destination accepts'));
    // Several attempts later the source must still be waiting on its first page.
    await until(
      'five more failed attempts',
      () => (r.stderr().match(/failed again; will retry/g) ?? []).length >= 5,
    );
    // Backpressure: the first page (or the first pages a sink holds) waits for the destination; no further
    // page is fetched, nothing committed.
    expect(org.emulator.stats().requests).toBeLessThanOrEqual(2 + (dest.heldPages ?? 0));
    const state = await readState(org);
    expect(Object.keys(state.sources.okta?.state ?? {})).not.toContain('next');
    expect(r.stderr().match(/retrying until the destination accepts/g)).toHaveLength(1);

    await dest.up();
    await until('every event at the destination', async () => (await dest.read(r.stdout())).length >= EVENTS);
    expect(r.stderr()).toContain('Sink delivers again.');
    r.child.kill('SIGTERM');
    expect(await r.exit, r.stderr()).toBe(0);
    expectAll(await dest.read(r.stdout()), expected, entry.guarantee, dest);
  });

  it('halts on a permanent error without committing, and resumes without loss once fixed', async (ctx) => {
    const { org, dest, file, env, expected } = await setup();
    if (!dest.permanentError || !dest.up) return ctx.skip();
    await dest.permanentError();
    const halted = await runCli(['run', '--once', '-c', file], { env });
    expect(halted.code).not.toBe(0);
    expect(halted.stderr).toContain('Sink dest');
    const state = await readState(org);
    expect(Object.keys(state.sources.okta?.state ?? {})).not.toContain('next');

    await dest.up();
    const fixed = await runCli(['run', '--once', '-c', file], { env });
    expect(fixed.code, fixed.stderr).toBe(0);
    expectAll(await dest.read(fixed.stdout, expected.length), expected, entry.guarantee, dest);
  });

  it('never shows a secret in validate --print, logs or the state file', async () => {
    const { org, file, env } = await setup();
    const printed = await runCli(['validate', '--print', '-c', file], { env });
    expect(printed.code, printed.stderr).toBe(0);
    const run = await runCli(['run', '--once', '--log-level', 'trace', '-c', file], { env });
    expect(run.code, run.stderr).toBe(0);
    // runCli and readState throw on any known secret (the Okta token, the destination's credentials).
    await readState(org);
    for (const value of Object.values(env)) {
      expect(printed.stdout).not.toContain(value);
      expect(run.stderr).not.toContain(value);
    }
  });
});
