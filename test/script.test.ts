import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRandom } from '../src/emulator/random.js';
import {
  HOUR,
  ROOT,
  ago,
  readLines,
  readState,
  runCli,
  useOrg,
  writeConfig,
  type TestOrg,
  KILL_POINTS,
  committedLines,
  runKilledAt,
} from './support/harness.js';

let org: TestOrg | undefined;
let foreign: TestOrg | undefined;
const startOrg = useOrg();

const BUILTIN = await readFile(join(ROOT, 'src', 'script', 'okta.lua'), 'utf8');

/** A user's script: the built-in one, copied, plus their change. */
async function writeScript(name: string, extra: string, base = BUILTIN): Promise<string> {
  const path = join(org!.dir, name);
  await writeFile(path, `${base}\n${extra}\n`);
  return path;
}

async function runOnce(script: string, events = 2500) {
  org!.emulator.appendEvents(events, { publishedStart: Date.now() - HOUR, seed: 5 });
  const { file, out } = await writeConfig(org!, {
    startFrom: ago(2 * HOUR),
    script,
  });
  const result = await runCli(['run', '--once', '-c', file], { env: org!.env });
  return { result, out, file };
}

const TAG = '"_okta_event_type":"systemLog"';
const servedRaw = () =>
  org!.emulator.allEvents().map((e) => {
    const raw = e.raw.toString('utf8');
    return { raw, event: JSON.parse(raw) as Record<string, unknown> };
  });
const withMembers = (raw: string, members: string) => `${raw.slice(0, raw.lastIndexOf('}'))},${members}}`;
const parsed = (lines: string[]) => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
// Values the way JSON text carries them (-0 becomes 0), for comparing what does not depend on the bytes.
const served = () =>
  org!.emulator
    .allEvents()
    .map((e) => JSON.parse(JSON.stringify(JSON.parse(e.raw.toString('utf8')))) as Record<string, unknown>);

describe('custom collection scripts', () => {
  it('keeps only the event types a transform lets through, and still reaches the end of the log', async () => {
    org = await startOrg();
    const script = await writeScript(
      'filter.lua',
      `local keep = { ["user.session.start"] = true, ["user.authentication.sso"] = true }
function transform(e)
  if keep[e.eventType] then return e end
  return nil
end`,
    );
    const { result, out } = await runOnce(script);
    expect(result.code, result.stderr).toBe(0);
    // A kept event is written with the bytes Okta sent.
    const expected = servedRaw()
      .filter(
        ({ event }) =>
          event.eventType === 'user.session.start' || event.eventType === 'user.authentication.sso',
      )
      .map(({ raw }) => withMembers(raw, TAG));
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(2500);
    expect(await readLines(out)).toEqual(expected);
    const state = await readState(org);
    expect(state.sources.okta!.state.last_uuid).toBe(org.emulator.allEvents().at(-1)!.uuid);
  });

  it('adds a field derived from actor.alternateId', async () => {
    org = await startOrg();
    const script = await writeScript(
      'enrich.lua',
      `function transform(e)
  if type(e.actor) == "table" and type(e.actor.alternateId) == "string" then
    e.actor_domain = e.actor.alternateId:match("@(.+)$")
  end
  return e
end`,
    );
    const { result, out } = await runOnce(script, 1200);
    expect(result.code, result.stderr).toBe(0);
    // Only the added field is new: the rest of each line is the bytes Okta sent.
    const expected = servedRaw().map(({ raw, event }) => {
      const id = (event.actor as { alternateId?: string } | undefined)?.alternateId;
      const domain = typeof id === 'string' ? /@(.+)$/.exec(id)?.[1] : undefined;
      return withMembers(
        raw,
        `${domain === undefined ? '' : `"actor_domain":${JSON.stringify(domain)},`}${TAG}`,
      );
    });
    expect(await readLines(out)).toEqual(expected);
  });

  it('fails the cycle when a hook throws, commits nothing past it, and recovers on the next run', async () => {
    org = await startOrg();
    // Throws on the second full page of a process, once: the second run gets past it.
    const script = await writeScript(
      'flaky.lua',
      `local calls = 0
local original = after_page
function after_page(state, page)
  calls = calls + 1
  if calls == 2 and page.count == 1000 then error("upstream quirk") end
  return original(state, page)
end`,
    );
    const { result, out, file } = await runOnce(script);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/flaky\.lua: after_page failed at line \d+: .*upstream quirk/);
    expect(await readLines(out)).toHaveLength(1000);

    const again = await runCli(['run', '--once', '-c', file], { env: org.env });
    expect(again.code, again.stderr).toBe(0);
    expect(parsed(await readLines(out)).map((e) => e.uuid)).toEqual(served().map((e) => e.uuid));
  });

  it('stops a hook that loops forever and loses nothing', async () => {
    org = await startOrg();
    const script = await writeScript(
      'loop.lua',
      `local original = after_page
function after_page(state, page)
  if page.count < 1000 then while true do end end
  return original(state, page)
end`,
    );
    const { result, out } = await runOnce(script);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /loop\.lua: after_page (exceeded its instruction budget|exceeded its deadline)/,
    );
    expect(await readLines(out)).toHaveLength(2000);
    expect((await readState(org)).sinks.archive!.length).toBe((await readFile(out)).length);
  });

  it('cannot send the token to another origin', async () => {
    org = await startOrg();
    foreign = await startOrg();
    const script = await writeScript(
      'exfiltrate.lua',
      `function cycle_request(state) return "${foreign.origin}/api/v1/logs?since=x" end`,
    );
    const { result } = await runOnce(script, 10);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`Refusing to request ${foreign.origin}`);
    expect(foreign.emulator.stats().requests).toBe(0);
    expect(org.emulator.stats().requests).toBe(0);
  });

  it('cannot reach the operating system', async () => {
    org = await startOrg();
    const script = await writeScript('os.lua', 'os.execute("touch /tmp/oktail-pwned")');
    const { file } = await writeConfig(org, { script });
    const check = await runCli(['validate', '-c', file], { env: org.env });
    expect(check.code).toBe(2);
    expect(check.stderr).toMatch(/os\.lua line \d+: .*os/);
    const result = await runCli(['run', '--once', '-c', file], { env: org.env });
    expect(result.code).not.toBe(0);
    expect(org.emulator.stats().requests).toBe(0);
  });

  it('is checked by validate: a syntax error with its line, a missing hook by name', async () => {
    org = await startOrg();
    const broken = await writeScript(
      'broken.lua',
      'return',
      '-- line 1\n-- line 2\n-- line 3\nlocal x = = 1\n',
    );
    const missing = await writeScript('missing.lua', '', 'function initial_state(c) return {} end\n');
    for (const [script, pattern] of [
      [broken, /broken\.lua line 4: /],
      [missing, /missing\.lua.*cycle_request/],
    ] as const) {
      const { file } = await writeConfig(org, { script });
      const result = await runCli(['validate', '-c', file], { env: org.env });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(pattern);
    }
  });

  it('keeps exactly-once delivery across SIGKILLs with a custom script', async () => {
    org = await startOrg({ latencyMs: 10 });
    org.emulator.appendEvents(6_000, { publishedStart: Date.now() - HOUR, seed: 9 });
    const script = await writeScript(
      'enrich.lua',
      'function transform(e) e.collected_by = "oktail" return e end',
    );
    const { file, out } = await writeConfig(org, {
      startFrom: ago(2 * HOUR),
      script,
    });
    const env = org.env;
    const random = createRandom(77);
    let kills = 0;
    for (let round = 0; round < 8; round++) {
      const nth = 1 + random.int(2);
      const point = random.pick(KILL_POINTS);
      // More than nth full pages past the checkpoint: the run is still going when it is killed.
      const backlog = org.emulator.eventCount - (await committedLines(org, 'archive', out));
      if (backlog < (nth + 1) * 1000) org.emulator.appendEvents((nth + 1) * 1000 - backlog + 500);
      const result = await runKilledAt(org, ['run', '--once', '-c', file], { nth, point, sinkFile: out });
      expect(result.signal, result.stderr).toBe('SIGKILL');
      kills++;
    }
    const final = await runCli(['run', '--once', '-c', file], { env });
    expect(final.code, final.stderr).toBe(0);
    const lines = parsed(await readLines(out));
    expect(lines.map((e) => e.uuid)).toEqual(served().map((e) => e.uuid));
    expect(lines.every((e) => e.collected_by === 'oktail')).toBe(true);
    expect(kills).toBe(8);
  }, 300_000);
});
