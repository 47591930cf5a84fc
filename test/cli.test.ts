import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  HOUR,
  ROOT,
  ago,
  collect,
  readLines,
  readState,
  runCli,
  secrets,
  sleep,
  spawnCli,
  useOrg,
  writeConfig,
  type TestOrg,
} from './support/harness.js';

let org: TestOrg | undefined;
const startOrg = useOrg();

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
    const result = await runCli(['validate', '-c', file], { env: org.env });
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

  it('warns when start_from lies beyond the 90 days Okta keeps, with the start the first run will use', async () => {
    org = await startOrg();
    org.emulator.appendEvents(50, { publishedStart: Date.now() - HOUR });
    const { file, out } = await writeConfig(org, { startFrom: '2020-01-01T00:00:00Z' });
    const warning =
      /start_from 2020-01-01T00:00:00.000Z is older than the 90 days Okta keeps; starting from (\S+) instead/;

    const before = Date.now();
    const validate = await runCli(['validate', '-c', file], { env: org.env });
    expect(validate.code, validate.stderr).toBe(0);
    expect(validate.stderr).toMatch(/^warning: sources\.okta: start_from /m);
    const shown = Date.parse(warning.exec(validate.stderr)![1]!);
    expect(shown).toBeGreaterThanOrEqual(before - 90 * 24 * HOUR - 1000);
    expect(shown).toBeLessThanOrEqual(Date.now() - 90 * 24 * HOUR);

    const run = await runCli(['run', '--once', '-c', file], { env: org.env });
    expect(run.code, run.stderr).toBe(0);
    const logged = warning.exec(run.stderr)![1]!;
    // The start it announced is the one it committed and asked Okta for.
    expect(org.emulator.requests[0]!.query.since).toBe(logged);
    expect((await readLines(out)).length).toBe(50);
    // Said once: a later run resumes from its checkpoint and has nothing to say about start_from.
    const again = await runCli(['run', '--once', '-c', file], { env: org.env });
    expect(again.stderr).not.toMatch(warning);
  });

  it('accepts a good config and prints it with the token redacted', async () => {
    org = await startOrg();
    const { file } = await writeConfig(org);
    const result = await runCli(['validate', '--print', '-c', file], { env: org.env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('is valid: 1 source(s) (okta), 1 sink(s) (archive: file, exactly once)');
    expect(result.stdout).toContain('"token": "[redacted]"');
  });

  it('reports an unreadable TLS file by its key', async () => {
    org = await startOrg();
    const { file } = await writeConfig(org, { tls: { enabled: true, ca_file: '/nonexistent/ca.pem' } });
    const result = await runCli(['validate', '-c', file], { env: org.env });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('sources.okta.tls.ca_file: cannot read /nonexistent/ca.pem (ENOENT)');
  });
});

describe('oktail run', () => {
  it('stops on SIGTERM with exit 0 without waiting for the answer in flight, leaving a consistent checkpoint', async () => {
    org = await startOrg();
    org.emulator.appendEvents(20_000, { publishedStart: Date.now() - HOUR });
    // A request timeout longer than the test's limit: a collector that waited for the held answer
    // would still be running when the test kills it.
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR), timeoutSecs: 120 });
    // The third request is held until the collector has exited: it has committed two pages and waits.
    const hold = org.emulator.holdFrom(3);
    const child = spawnCli(['run', '-c', file], org.env);
    const done = collect(child, performance.now(), 30_000);
    try {
      await hold.arrived(1, 30_000);
      child.kill('SIGTERM');
      const result = await done;
      expect(result.code, result.stderr).toBe(0);
    } finally {
      hold.end();
    }
    const lines = await readLines(out);
    const state = await readState(org);
    expect(state.sinks.archive!.length).toBe((await readFile(out)).length);
    expect(lines.length).toBe(2000);
    expect(lines.length % 1000).toBe(0);
  });

  it('keeps polling every interval and picks up new events', async () => {
    org = await startOrg();
    const { file, out } = await writeConfig(org, { intervalSecs: 10 });
    const started = performance.now();
    const child = spawnCli(['run', '-c', file], org.env);
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
    const { file } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    await runCli(['run', '--once', '-c', file], { env: org.env });
    const state = await readFile(join(org.dir, 'data', 'state.json'), 'utf8');
    expect(secrets.has(org.token)).toBe(true);
    expect(state).not.toContain(org.token);
  });
});
