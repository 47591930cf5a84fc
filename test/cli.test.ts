import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ROOT,
  collect,
  readLines,
  readState,
  runCli,
  secrets,
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

describe('oktail validate', () => {
  it('lists every problem with its key path and line, and exits 2', async () => {
    org = await startOrg();
    const file = join(org.dir, 'bad.yaml');
    await writeFile(
      file,
      [
        'sources:',
        '  okta:',
        '    type: okta',
        '    domain: https://acme.okta.com',
        '    interval_secs: 5',
        '    auth:',
        '      token: ${OKTA_API_TOKEN}',
        '    tls:',
        '      enabled: true',
        '      verify_hostnme: false',
        'sinks:',
        '  archive:',
        '    type: file',
        '    inputs: [okt]',
        '    path: out.ndjson',
      ].join('\n'),
    );
    const result = await runCli(['validate', '-c', file], { env: { OKTA_API_TOKEN: org.token } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'sources.okta.interval_secs (line 5): must be between 10 and 86401, got 5',
    );
    expect(result.stderr).toContain('sources.okta.domain (line 4)');
    expect(result.stderr).toContain('write acme.okta.com');
    expect(result.stderr).toMatch(
      /sources\.okta\.tls\.verify_hostnme \(line 10\): unknown key.*verify_hostname/,
    );
    expect(result.stderr).toMatch(/sinks\.archive\.inputs\[0\] \(line 14\): unknown source "okt"/);
  });

  it('names an unset environment variable', async () => {
    org = await startOrg();
    const { file } = await writeConfig(org);
    const env = { ...process.env };
    delete env.OKTA_API_TOKEN;
    const result = await runCli(['validate', '-c', file], { env: { OKTA_API_TOKEN: '' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('OKTA_API_TOKEN');
  });

  it('accepts a good config and prints it with the token redacted', async () => {
    org = await startOrg();
    const { file } = await writeConfig(org);
    const result = await runCli(['validate', '--print', '-c', file], { env: { OKTA_API_TOKEN: org.token } });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('is valid: 1 source(s) (okta), 1 sink(s) (archive: file, exactly once)');
    expect(result.stdout).toContain('"token": "[redacted]"');
  });

  it('reports an unreadable TLS file by its key', async () => {
    org = await startOrg();
    const { file } = await writeConfig(org, { tls: { enabled: true, ca_file: '/nonexistent/ca.pem' } });
    const result = await runCli(['validate', '-c', file], { env: { OKTA_API_TOKEN: org.token } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('sources.okta.tls.ca_file: cannot read /nonexistent/ca.pem (ENOENT)');
  });
});

describe('oktail run', () => {
  it('stops on SIGTERM within a few seconds with exit 0, leaving a consistent checkpoint', async () => {
    org = await startOrg({ latencyMs: 20 });
    org.emulator.appendEvents(20_000, { publishedStart: Date.now() - HOUR });
    const { file, out } = await writeConfig(org, {
      startFrom: new Date(Date.now() - 2 * HOUR).toISOString(),
    });
    const started = performance.now();
    const child = spawnCli(['run', '-c', file], { OKTA_API_TOKEN: org.token });
    const done = collect(child, started, 30_000);
    while ((await readLines(out).catch(() => [])).length === 0) await sleep(50);
    const signalledAt = performance.now();
    child.kill('SIGTERM');
    const result = await done;
    expect(result.code, result.stderr).toBe(0);
    expect(performance.now() - signalledAt).toBeLessThan(5000);
    const lines = await readLines(out);
    const state = await readState(org);
    expect(state.sinks.archive!.length).toBe((await readFile(out)).length);
    expect(lines.length % 1000).toBe(0);
  });

  it('keeps polling every interval and picks up new events', async () => {
    org = await startOrg();
    const { file, out } = await writeConfig(org, { intervalSecs: 10 });
    const started = performance.now();
    const child = spawnCli(['run', '-c', file], { OKTA_API_TOKEN: org.token });
    const done = collect(child, started, 40_000);
    // Events from before the collector fixed "now" are rightly not collected: wait for its first request.
    while (org.emulator.stats().requests === 0 && performance.now() - started < 20_000) await sleep(50);
    const fresh = org.emulator.appendEvents(3);
    while ((await readLines(out)).length < 3 && performance.now() - started < 30_000) await sleep(200);
    child.kill('SIGINT');
    const result = await done;
    expect(result.code, result.stderr).toBe(0);
    expect((await readLines(out)).map((l) => (JSON.parse(l) as { uuid: string }).uuid)).toEqual(
      fresh.map((e) => e.uuid),
    );
    // One request per cycle while idle: never an extra request for an empty page.
    expect(org.emulator.stats().requests).toBe(2);
  }, 45_000);

  it('exits 2 with the problems when the config is invalid', async () => {
    org = await startOrg();
    const file = join(org.dir, 'broken.yaml');
    await writeFile(file, 'sources: {}\nsinks: {}\n');
    const result = await runCli(['run', '--once', '-c', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/sources/);
  });

  it('exits 2 on a usage error', async () => {
    const result = await runCli(['run']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("required option '-c, --config <file>' not specified");
  });
});

describe('oktail demo and script', () => {
  it('collects from the built-in emulator to stdout', async () => {
    const result = await runCli(['demo', '--once', '--events', '1500']);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(1500);
    expect(new Set(lines.map((l) => (JSON.parse(l) as { uuid: string }).uuid)).size).toBe(1500);
    expect(JSON.parse(lines[0]!)).toMatchObject({ _okta_event_type: 'systemLog' });
  });

  it('prints the built-in collection script', async () => {
    const result = await runCli(['script', 'print', 'okta']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(await readFile(join(ROOT, 'src', 'script', 'okta.lua'), 'utf8'));
  });
});

describe('secrets', () => {
  it('never writes the token to the state file', async () => {
    org = await startOrg();
    org.emulator.appendEvents(5, { publishedStart: Date.now() - HOUR });
    const { file } = await writeConfig(org, { startFrom: new Date(Date.now() - 2 * HOUR).toISOString() });
    await runCli(['run', '--once', '-c', file], { env: { OKTA_API_TOKEN: org.token } });
    const state = await readFile(join(org.dir, 'data', 'state.json'), 'utf8');
    expect(secrets.has(org.token)).toBe(true);
    expect(state).not.toContain(org.token);
  });
});
