import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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

describe('oktail state', () => {
  it('shows, exports, resets and imports the checkpoint, and a run after an import resumes exactly', async () => {
    org = await startOrg();
    org.emulator.appendEvents(1500, { publishedStart: Date.now() - HOUR, stepMs: 1000 });
    const { file, out } = await writeConfig(org, {
      startFrom: ago(2 * HOUR),
    });
    const env = org.env;
    expect((await runCli(['run', '--once', '-c', file], { env })).code).toBe(0);
    const state = await readState(org);
    const okta = state.sources.okta!.state;

    const show = await runCli(['state', 'show', '-c', file], { env });
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`source okta (${org.domain}), committed `);
    expect(show.stdout).toContain(`next (cursor): ${okta.next as string}`);
    expect(show.stdout).toContain(`last_uuid: ${okta.last_uuid as string}`);
    expect(show.stdout).toContain(`last_published: ${okta.last_published as string}`);
    const size = (await stat(out)).size;
    expect(show.stdout).toContain(`sink archive: ${out}, ${size} bytes committed\n`);

    const exported = await runCli(['state', 'export', '-c', file], { env });
    expect(exported.code).toBe(0);
    expect(JSON.parse(exported.stdout)).toEqual(
      JSON.parse(await readFile(join(org.dir, 'data', 'state.json'), 'utf8')),
    );
    expect(exported.stdout).not.toContain(org.token);
    const backup = join(org.dir, 'backup.json');
    await writeFile(backup, exported.stdout);

    // The same instant written with an offset: stored in the canonical UTC form.
    const from = new Date(Math.floor((Date.now() - 5 * HOUR) / 1000) * 1000);
    const withOffset = new Date(from.getTime() + HOUR).toISOString().slice(0, 19) + '+01:00';
    const reset = await runCli(['state', 'reset', 'okta', '--start-from', withOffset, '-c', file], { env });
    expect(reset.code).toBe(0);
    expect(reset.stdout).toContain(`the next run starts from ${from.toISOString()}`);
    expect((await readState(org)).sources.okta!.state).toEqual({ since: from.toISOString() });

    const imported = await runCli(['state', 'import', backup, '--force', '-c', file], { env });
    expect(imported.code).toBe(0);
    expect(await readState(org)).toEqual(JSON.parse(exported.stdout));

    // Resumes from the imported cursor: the new events once, nothing again.
    org.emulator.appendEvents(30, { publishedStart: Date.now() - 10_000, stepMs: 100 });
    expect((await runCli(['run', '--once', '-c', file], { env })).code).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
  }, 90_000);

  it('needs no secret: state commands run without the token variable, run and validate still need it', async () => {
    org = await startOrg();
    org.emulator.appendEvents(1200, { publishedStart: Date.now() - HOUR });
    const { file } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    expect((await runCli(['run', '--once', '-c', file], { env: org.env })).code).toBe(0);
    const noToken = { OKTA_API_TOKEN: undefined };
    const show = await runCli(['state', 'show', '-c', file], { env: noToken });
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain(`source okta (${org.domain}), committed `);
    const exported = await runCli(['state', 'export', '-c', file], { env: noToken });
    expect(exported.code, exported.stderr).toBe(0);
    expect(JSON.parse(exported.stdout)).toEqual(await readState(org));
    const reset = await runCli(['state', 'reset', 'okta', '-c', file], { env: noToken });
    expect(reset.code, reset.stderr).toBe(0);
    for (const command of ['run', 'validate', 'check']) {
      const result = await runCli([command, '-c', file], { env: noToken });
      expect(result.code, command).toBe(2);
      expect(result.stderr).toContain('environment variable OKTA_API_TOKEN is not set');
    }
  }, 60_000);

  it('resets a source to the config start_from by forgetting its state', async () => {
    org = await startOrg();
    const { file } = await writeConfig(org, { startFrom: '2026-01-02T03:04:05Z' });
    const env = org.env;
    expect((await runCli(['run', '--once', '-c', file], { env })).code).toBe(0);
    const reset = await runCli(['state', 'reset', 'okta', '-c', file], { env });
    expect(reset.code).toBe(0);
    expect(reset.stdout).toContain('Reset source okta; the next run starts from 2026-01-02T03:04:05.000Z.');
    expect(reset.stdout).toMatch(/Previous state: \{"domain":/);
    expect((await readState(org)).sources.okta).toBeUndefined();
    const show = await runCli(['state', 'show', 'okta', '-c', file], { env });
    expect(show.stdout).toContain('no checkpoint yet; the next run starts from 2026-01-02T03:04:05.000Z');
  }, 60_000);

  it('refuses to import something that is not a checkpoint, and names unknown sources', async () => {
    org = await startOrg();
    const { file } = await writeConfig(org);
    const env = org.env;
    const bad = join(org.dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ version: 1, sources: { okta: { state: 'x' } }, sinks: {} }));
    const result = await runCli(['state', 'import', bad, '-c', file], { env });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /not an oktail checkpoint: sources\.okta\.domain is missing; sources\.okta\.state/,
    );
    expect(existsSync(join(org.dir, 'data', 'state.json'))).toBe(false);

    const existing = { version: 1, sources: {}, sinks: { archive: { path: '/x', length: 0 } } };
    await mkdir(join(org.dir, 'data'), { recursive: true });
    await writeFile(join(org.dir, 'data', 'state.json'), JSON.stringify(existing));
    const good = join(org.dir, 'good.json');
    await writeFile(good, JSON.stringify({ version: 1, sources: {}, sinks: {} }));
    const refused = await runCli(['state', 'import', good, '-c', file], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('already holds state (archive)');
    expect(refused.stderr).toContain('--force');

    const unknown = await runCli(['state', 'show', 'nope', '-c', file], { env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('There is no source "nope"');
    const badTime = await runCli(['state', 'reset', 'okta', '--start-from', 'yesterday', '-c', file], {
      env,
    });
    expect(badTime.code).toBe(2);
  }, 60_000);
});
