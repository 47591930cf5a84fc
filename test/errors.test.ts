import { describe, expect, it } from 'vitest';
import type { Fault } from '../src/emulator/emulator.js';
import { generateEvents } from '../src/emulator/events.js';
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
let foreign: TestOrg | undefined;
const startOrg = useOrg();

async function backlogOrg(events = 2500) {
  const o = await startOrg({ rateLimit: { limit: 600, windowMs: 60_000 } });
  o.emulator.appendEvents(events, { publishedStart: Date.now() - HOUR, seed: 7 });
  return o;
}

/** Runs once with the first request of the second page failing as given; returns the run and the output. */
async function runWithFaults(faults: Fault[]) {
  org = await backlogOrg();
  const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
  const env = org.env;
  // One clean page first, so the faults hit a source with a committed cursor to protect.
  org.emulator.injectFaults([{ kind: 'delay', ms: 0 }, ...faults]);
  const result = await runCli(['run', '--once', '-c', file], { env });
  return { result, out, file };
}

describe('the error table', () => {
  const retried: [string, Fault[]][] = [
    ['500', [{ kind: 'status', status: 500, errorCode: 'E0000009' }]],
    [
      '502 and 503',
      [
        { kind: 'status', status: 502 },
        { kind: 'status', status: 503 },
      ],
    ],
    ['a connection reset', [{ kind: 'reset' }]],
    ['a body cut off mid-transfer', [{ kind: 'truncate-close' }]],
    ['a complete response holding truncated JSON', [{ kind: 'truncate-json' }]],
    ['an HTML page instead of JSON', [{ kind: 'not-json' }]],
    ['a JSON object instead of an array', [{ kind: 'not-array' }]],
  ];
  for (const [what, faults] of retried) {
    it(`retries ${what} and still delivers every event exactly once`, async () => {
      const { result, out } = await runWithFaults(faults);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain('Failed to fetch Okta system logs. Status=');
      expect(compareDelivery(await readLines(out), org!.emulator.allEvents())).toBeNull();
    });
  }

  it('retries a request that times out', async () => {
    org = await backlogOrg(1500);
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR), timeoutSecs: 5 });
    org.emulator.injectFaults([
      { kind: 'delay', ms: 0 },
      { kind: 'delay', ms: 7000 },
    ]);
    const result = await runCli(['run', '--once', '-c', file], { env: org.env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/Failed to fetch Okta system logs\. Status=none \(UND_ERR_HEADERS_TIMEOUT/);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
  }, 30_000);

  it('waits for the rate-limit window to reset after a 429, timed by the server clock', async () => {
    // The server clock runs an hour ahead: a local-clock reading of Reset would wait an hour.
    org = await startOrg({ rateLimit: { limit: 600, windowMs: 4000 }, clockSkewMs: HOUR });
    org.emulator.appendEvents(1500, { publishedStart: Date.now() + HOUR - 10 * 60_000 });
    const { file, out } = await writeConfig(org, {
      startFrom: new Date(Date.now() + HOUR - 20 * 60_000).toISOString(),
    });
    org.emulator.injectFaults([{ kind: 'status', status: 429 }]);

    const result = await runCli(['run', '--once', '-c', file], { env: org.env });

    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('Rate limit exceeded - will retry');
    expect(result.stderr).toContain('E0000047');
    // It waited for the next window (at most 4 s plus a second of Date resolution and jitter), not an
    // hour: the waits it decided, from its log (it logs those of a second or more), not a stopwatch.
    const waits = result.stderr
      .split('\n')
      .filter((line) => line.includes('Waiting for rate-limit budget.'))
      .map((line) => (JSON.parse(line) as { waitMs: number }).waitMs);
    for (const waitMs of waits) expect(waitMs).toBeLessThan(7000);
    expect(org.emulator.requests.filter((r) => r.status === 429)).toHaveLength(1);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
  }, 30_000);

  const halts: [number, string, number][] = [
    [400, 'E0000001', 4],
    [401, 'E0000011', 3],
    [403, 'E0000006', 3],
  ];
  for (const [status, errorCode, exitCode] of halts) {
    it(`halts on ${status} with exit code ${exitCode} and keeps the checkpoint where it was`, async () => {
      const { result, out } = await runWithFaults([{ kind: 'status', status, errorCode }]);
      const message =
        status === 400
          ? 'Bad request - check API parameters'
          : 'Authentication failed - check OKTA_API_TOKEN';
      expect(result.code).toBe(exitCode);
      expect(result.stderr).toContain(message);
      expect(result.stderr).toContain(`errorCode=${errorCode}`);
      expect(result.stderr).toContain('Source halted.');
      const lines = await readLines(out);
      expect(lines).toHaveLength(1000);
      expect((await readState(org!)).sinks.archive!.length).toBe(Buffer.byteLength(lines.join('\n') + '\n'));
      // The next run resumes exactly after the first page.
      const again = await runCli(
        ['run', '--once', '-c', (await writeConfig(org!, { startFrom: ago(HOUR) })).file],
        { env: org!.env },
      );
      expect(again.code, again.stderr).toBe(0);
      expect(compareDelivery(await readLines(out), org!.emulator.allEvents())).toBeNull();
    });
  }

  it("shows every one of Okta's errorCauses on a 400, not only the errorSummary", async () => {
    const causes = ['since: The since parameter must be a valid date', 'limit: must be at most 1000'];
    const { result } = await runWithFaults([
      { kind: 'status', status: 400, errorCode: 'E0000001', errorCauses: causes },
    ]);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('errorSummary=\\"Api validation failed\\"');
    expect(result.stderr).toContain(`errorCauses=${JSON.stringify(JSON.stringify(causes)).slice(1, -1)}`);
  });

  it('gives the exact command that recovers from a rejected next link, and it works', async () => {
    org = await startOrg();
    // Persisted when published (as Okta's events nearly all are), several to a millisecond, so that a
    // `since` start begins exactly at an instant shared with the last committed event.
    for (const record of generateEvents(2500, {
      publishedStart: Date.now() - HOUR,
      sameMillisecondGroups: 3,
    })) {
      org.emulator.append([record], { persistedAt: record.publishedMs });
    }
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    org.emulator.injectFaults([
      { kind: 'delay', ms: 0 },
      { kind: 'status', status: 400, errorCode: 'E0000029' },
    ]);
    const result = await runCli(['run', '--once', '-c', file], { env: org.env });
    expect(result.code).toBe(4);
    const state = (await readState(org)).sources.okta!.state;
    const published = state.last_published as string;
    expect(published).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    const command = `oktail state reset okta --start-from ${published} -c ${file}`;
    expect(result.stderr).toContain(command);
    expect(result.stderr).toContain(
      `events published at ${published} (the last committed one included) may be`,
    );
    // The command as printed (without the token, which it does not need), then a run that completes.
    const reset = await runCli(command.split(' ').slice(1), { env: { OKTA_API_TOKEN: undefined } });
    expect(reset.code, reset.stderr).toBe(0);
    const again = await runCli(['run', '--once', '-c', file], { env: org.env });
    expect(again.code, again.stderr).toBe(0);
    const uuids = (await readLines(out)).map((l) => (JSON.parse(l) as { uuid: string }).uuid);
    // Nothing is missing; only events of the last committed instant can come twice.
    expect(new Set(uuids)).toEqual(new Set(org.emulator.allEvents().map((e) => e.uuid)));
    const repeated = uuids.length - new Set(uuids).size;
    const atThatInstant = org.emulator.allEvents().filter((e) => e.published === published).length;
    expect(repeated).toBeGreaterThanOrEqual(1);
    expect(repeated).toBeLessThanOrEqual(atThatInstant);
  });

  it('halts on a wrong token without sending the configured one anywhere else', async () => {
    org = await backlogOrg(10);
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    const result = await runCli(['run', '--once', '-c', file], {
      env: { OKTA_API_TOKEN: 'wrong-token-value' },
    });
    expect(result.code).toBe(3);
    expect(result.stderr).not.toContain('wrong-token-value');
    expect(await readLines(out)).toEqual([]);
  });

  it('halts on a next link to another origin and never sends the token there', async () => {
    org = await backlogOrg(2500);
    foreign = await startOrg();
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    org.emulator.injectFaults([{ kind: 'foreign-next', origin: foreign.origin }]);

    const result = await runCli(['run', '--once', '-c', file], { env: org.env });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`Refusing to request ${foreign.origin}`);
    expect(foreign.emulator.stats().requests).toBe(0);
    expect(await readLines(out)).toEqual([]);
  });
});
