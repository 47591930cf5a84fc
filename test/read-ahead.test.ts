import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpIngest } from './support/http-ingest.js';
import {
  HOUR,
  ago,
  collect,
  compareDelivery,
  readLines,
  readState,
  runCli,
  spawnCli,
  until,
  useChildren,
  useOrg,
  writeConfig,
  type TestOrg,
} from './support/harness.js';

const startOrg = useOrg();
const track = useChildren();
let ingest: HttpIngest | undefined;
afterEach(async () => {
  await ingest?.stop();
  ingest = undefined;
});

/** The emulator's log as `after` cursors: the first request has none. */
const cursors = (org: TestOrg) => org.emulator.requests.map((r) => r.query.after ?? null);

describe('reading one page ahead', () => {
  it('asks for the next page while the current one is still being delivered, and refetches it after a crash', async () => {
    const org = await startOrg();
    org.emulator.appendEvents(2500, { publishedStart: Date.now() - HOUR, seed: 31 });
    ingest = new HttpIngest(org.pki);
    const url = await ingest.start();
    // The destination refuses every page until the test lets it accept: page 1 cannot be committed.
    ingest.mode = { kind: 'status', status: 503, body: 'busy' };
    const ca = join(org.dir, 'ingest-ca.pem');
    await writeFile(ca, org.pki.caCert);
    const { file } = await writeConfig(org, {
      startFrom: ago(2 * HOUR),
      sinks: 'none',
      sinkLines: [
        '  siem:',
        '    type: http',
        '    inputs: [okta]',
        `    uri: ${JSON.stringify(url)}`,
        '    request: { retry_initial_backoff_secs: 0.05, retry_max_duration_secs: 600 }',
        `    tls: { ca_file: ${JSON.stringify(ca)} }`,
      ],
    });

    const child = track(spawnCli(['run', '--once', '-c', file], org.env));
    const done = collect(child, performance.now(), 120_000);
    await until(() => ingest!.requests.length >= 1, 'page 1 reaching the destination', 60_000);
    // Page 2 is requested, and answered, while page 1 is still refused by the destination.
    await until(
      () => org.emulator.requests.length >= 2 && org.emulator.requests[1]!.endedAt !== null,
      'the request for page 2',
      60_000,
    );
    expect(ingest.accepted).toHaveLength(0);
    expect(Object.keys((await readState(org)).sources.okta!.state)).not.toContain('next');
    const [first, second] = org.emulator.requests;
    expect(first!.query.after).toBeUndefined();
    expect(second!.query.after).toBeDefined();
    // Nothing more: the source reads one page ahead, not two.
    expect(org.emulator.requests.length).toBe(2);

    // A crash now loses only the page read ahead: it is fetched again after the restart.
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
    // A retry of page 1 sent just before the kill is still refused, not stored behind the dead collector's
    // back (which would be a duplicate the collector could not know of).
    await ingest.quiet();
    ingest.mode = { kind: 'accept' };
    const rerun = await runCli(['run', '--once', '-c', file], { env: org.env, timeoutMs: 120_000 });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(ingest.uuids()).toEqual(org.emulator.allEvents().map((e) => e.uuid));
    // The restart begins again from the committed start: page 1 and page 2 again, then page 3.
    const after = cursors(org);
    expect(after).toHaveLength(5);
    expect(after.slice(2, 4)).toEqual(after.slice(0, 2));
  }, 240_000);

  it("makes no request after a cycle's last page", async () => {
    const org = await startOrg();
    org.emulator.appendEvents(2500, { publishedStart: Date.now() - HOUR, seed: 32 });
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    const run = await runCli(['run', '--once', '-c', file], { env: org.env, timeoutMs: 120_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
    // Pages of 1000, 1000 and 500: the short one ends the cycle, with no request after it.
    expect(org.emulator.requests.map((r) => r.events)).toEqual([1000, 1000, 500]);
    expect(new Set(cursors(org)).size).toBe(3);

    // Caught up, a cycle costs exactly one request.
    const idle = await runCli(['run', '--once', '-c', file], { env: org.env, timeoutMs: 120_000 });
    expect(idle.code, idle.stderr).toBe(0);
    expect(org.emulator.requests.map((r) => r.events)).toEqual([1000, 1000, 500, 0]);
  }, 240_000);
});
