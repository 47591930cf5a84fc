import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  HOUR,
  ago,
  collect,
  compareDelivery,
  readLines,
  runCli,
  spawnCli,
  useChildren,
  useOrg,
  writeConfig,
  type CliResult,
  type TestOrg,
} from './support/harness.js';

let org: TestOrg | undefined;
const startOrg = useOrg();
const track = useChildren();

/** A long-running `oktail run`, resolved once its stderr shows `ready` (a regexp on the log). */
function startCollector(
  file: string,
  token: string,
  ready: RegExp,
): Promise<{ proc: ChildProcess; done: Promise<CliResult>; stderr: () => string }> {
  const proc = spawnCli(['run', '-c', file, '--log-format', 'json'], { OKTA_API_TOKEN: token });
  track(proc);
  let stderr = '';
  const done = collect(proc, performance.now(), 60_000);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`collector not ready:\n${stderr}`)), 30_000);
    proc.stderr!.on('data', (d: Buffer | string) => {
      stderr += d.toString();
      if (ready.test(stderr)) {
        clearTimeout(timer);
        resolve({ proc, done, stderr: () => stderr });
      }
    });
    proc.on('close', () => reject(new Error(`collector exited early:\n${stderr}`)));
  });
}

function jsonLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('the data_dir lock', () => {
  it('keeps a second collector and the state commands off a data_dir in use, until the first stops', async () => {
    org = await startOrg();
    org.emulator.appendEvents(50, { publishedStart: Date.now() - HOUR, stepMs: 1000 });
    const { file } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    const env = org.env;
    const first = await startCollector(file, org.token, /Cycle finished/);
    const lockFile = join(org.dir, 'data', 'lock');
    expect(JSON.parse(await readFile(lockFile, 'utf8'))).toMatchObject({
      pid: first.proc.pid,
      command: 'run',
    });

    const second = await runCli(['run', '--once', '-c', file], { env });
    expect(second.code).toBe(1);
    const message = `is in use by oktail run (pid ${first.proc.pid},`;
    expect(second.stderr).toContain(message);
    expect(second.stderr).toContain('stop it first');
    for (const args of [
      ['state', 'export'],
      ['state', 'reset', 'okta'],
    ]) {
      const refused = await runCli([...args, '-c', file], { env });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(message);
    }
    // Reading needs no lock: the checkpoint file is replaced atomically.
    const beside = await runCli(['state', 'show', '-c', file], { env });
    expect(beside.code).toBe(0);
    expect(beside.stdout).toContain('okta');

    first.proc.kill('SIGTERM');
    const result = await first.done;
    expect(result.code).toBe(0);
    expect(existsSync(lockFile)).toBe(false);
    const show = await runCli(['state', 'show', '-c', file], { env });
    expect(show.code).toBe(0);
  }, 60_000);

  it('takes over the lock of a collector that was killed', async () => {
    org = await startOrg();
    org.emulator.appendEvents(20, { publishedStart: Date.now() - HOUR, stepMs: 1000 });
    const { file, out } = await writeConfig(org, {
      startFrom: ago(2 * HOUR),
    });
    const first = await startCollector(file, org.token, /Cycle finished/);
    first.proc.kill('SIGKILL');
    await first.done;
    expect(existsSync(join(org.dir, 'data', 'lock'))).toBe(true);
    const again = await runCli(['run', '--once', '-c', file], { env: org.env });
    expect(again.code).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
  }, 60_000);
});

describe('logs and metrics of a running collector', () => {
  it('serves /metrics and /ready from the process, and its JSON log never holds the token', async () => {
    org = await startOrg({ rateLimit: { limit: 1000, windowMs: 1000 } });
    org.emulator.appendEvents(1200, { publishedStart: Date.now() - HOUR, stepMs: 1000 });
    org.emulator.injectFaults([{ kind: 'status', status: 503 }]);
    const { file } = await writeConfig(org, {
      startFrom: ago(2 * HOUR),
      top: ['log:', '  level: trace', 'api:', '  address: "127.0.0.1:0"'],
    });
    const run = await startCollector(file, org.token, /Cycle finished/);
    const listening = jsonLines(run.stderr()).find(
      (l) => l.msg === 'API listening for /metrics, /health and /ready.',
    );
    const url = listening!.url as string;

    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain(
      `oktail_source_events_received_total{source="okta"} ${org.emulator.stats().eventsServed}`,
    );
    expect(metrics).toContain('oktail_sink_events_written_total{sink="archive",source="okta"} 1200');
    expect(metrics).toContain('oktail_source_requests_total{source="okta",status="503"} 1');
    // Node.js process metrics come along when the endpoint is on.
    expect(metrics).toContain('process_resident_memory_bytes');
    expect(metrics).not.toContain(org.token);
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    expect((await fetch(`${url}/health`)).status).toBe(200);

    run.proc.kill('SIGTERM');
    const result = await run.done;
    expect(result.code).toBe(0);
    const lines = jsonLines(result.stderr);
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines)
      expect(line).toMatchObject({ level: expect.any(String), time: expect.any(String) });
    expect(lines.find((l) => l.msg === 'Request failed; will retry.')).toMatchObject({
      level: 'warn',
      status: 503,
      code: 'OKTA_FETCH_FAILED',
      retryInMs: expect.any(Number),
    });
  }, 60_000);

  it('writes readable lines with --log-format pretty, and still no token', async () => {
    org = await startOrg();
    org.emulator.appendEvents(10, { publishedStart: Date.now() - HOUR, stepMs: 1000 });
    const { file } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    const result = await runCli(['run', '--once', '--log-format', 'pretty', '-c', file], {
      env: org.env,
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Cycle finished\. \{"source":"okta".*"events":10/m,
    );
    // Not a terminal: no colour codes, no progress lines.
    expect(result.stderr).not.toContain('\x1b[');
  });
});
