import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpIngest } from './support/http-ingest.js';
import {
  compareDelivery,
  completeLines,
  readLines,
  readState,
  spawnCli,
  startOrg,
  type TestOrg,
} from './support/harness.js';

const HOUR = 3600_000;

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

describe('two orgs, one destination down', () => {
  const orgs: TestOrg[] = [];
  let ingest: HttpIngest | undefined;
  afterEach(async () => {
    await ingest?.stop();
    for (const org of orgs.splice(0)) await org.stop();
  });

  it("a down http destination of one org does not hold back the other org's file sink", async () => {
    const a = await startOrg();
    const b = await startOrg();
    orgs.push(a, b);
    a.emulator.appendEvents(2500, { publishedStart: Date.now() - HOUR, seed: 1 });
    b.emulator.appendEvents(3500, { publishedStart: Date.now() - HOUR, seed: 2 });
    ingest = new HttpIngest(a.pki);
    const url = await ingest.start();
    ingest.mode = { kind: 'status', status: 503, body: 'down for maintenance' };
    const ca = join(a.dir, 'ingest-ca.pem');
    await writeFile(ca, a.pki.caCert);
    const out = join(b.dir, 'out', 'b.ndjson');
    const start = new Date(Date.now() - 2 * HOUR).toISOString();
    const source = (name: string, org: TestOrg, token: string) => [
      `  ${name}:`,
      '    type: okta',
      `    domain: "${org.domain}"`,
      '    interval_secs: 10',
      `    start_from: ${start}`,
      '    auth:',
      `      token: \${${token}}`,
      '    tls:',
      '      enabled: true',
      `      ca_file: ${JSON.stringify(org.files.caFile)}`,
    ];
    const config = [
      `data_dir: ${JSON.stringify(join(a.dir, 'data'))}`,
      'sources:',
      ...source('a', a, 'TOKEN_A'),
      ...source('b', b, 'TOKEN_B'),
      'sinks:',
      '  siem:',
      '    type: http',
      '    inputs: [a]',
      `    uri: ${JSON.stringify(url)}`,
      '    request: { retry_initial_backoff_secs: 0.05, retry_max_duration_secs: 1 }',
      `    tls: { ca_file: ${JSON.stringify(ca)} }`,
      '  archive:',
      '    type: file',
      '    inputs: [b]',
      `    path: ${JSON.stringify(out)}`,
    ];
    const file = join(a.dir, 'oktail.yaml');
    await writeFile(file, config.join('\n') + '\n');

    const child = spawnCli(['run', '-c', file], { TOKEN_A: a.token, TOKEN_B: b.token });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      // Progress, not speed: org b's whole backlog reaches its file and is committed while org a's
      // destination still refuses everything.
      await until('org b delivered', async () => (await completeLines(out)).length === 3500);
      await until('org b committed', async () => {
        const state = await readState(a);
        return state.sinks.archive?.length === (await stat(out)).size;
      });
      expect(ingest.requests.length).toBeGreaterThan(0);
      expect(ingest.accepted).toHaveLength(0);
      const held = await readState(a);
      expect(Object.keys(held.sources.a?.state ?? {})).not.toContain('next');
      expect(a.emulator.stats().requests).toBeLessThanOrEqual(2);
      expect(compareDelivery(await readLines(out), b.emulator.allEvents())).toBeNull();

      ingest.mode = { kind: 'accept' };
      await until('org a delivered', () => new Set(ingest!.uuids()).size === 2500);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exit, stderr).toBe(0);
    expect(new Set(ingest.uuids())).toEqual(new Set(a.emulator.allEvents().map((e) => e.uuid)));
  });
});
