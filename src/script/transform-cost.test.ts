import { readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { CollectionLogic } from '../core/collection-logic.js';
import type { JsonObject } from '../core/json.js';
import { builtinScriptSource, loadCollectionScript } from './collection-script.js';
import { DEFAULT_LIMITS, ScriptSandbox } from './sandbox.js';
import { encodeEvents } from './raw-events.js';

/**
 * Measures what per-event work costs (the figures in docs/scripting.md come from here; run with
 * OKTAIL_PRINT_COSTS=1 to print them). CPU time, not wall time, so a busy machine skews it less. It is a
 * measurement, not a test: timings do not decide whether the suite passes, so it runs only on request.
 */
const measure = process.env.OKTAIL_PRINT_COSTS !== undefined;

const EVENT = JSON.parse(
  readFileSync(new URL('./testdata/system-log-event.json', import.meta.url), 'utf8'),
) as JsonObject;
// Half the page is of the type the filter keeps.
const PAGE = Array.from({ length: 1000 }, (_, i) => ({
  ...structuredClone<JsonObject>(EVENT),
  uuid: `u${i}`,
  eventType: i % 2 === 0 ? 'user.session.start' : 'policy.evaluate_sign_on',
}));
// As a run hands a page over: the bytes Okta sent and where each event sits.
const RAW = encodeEvents(PAGE);

const SCRIPT = `
mode = "identity"
local KEEP = { ["user.session.start"] = true }
function transform(e)
  if mode == "identity" then return e end
  if mode == "filter" then if KEEP[e.eventType] then return e end return nil end
  if mode == "drop" then return nil end
  local id = e.actor ~= nil and e.actor ~= json.null and e.actor.alternateId or nil
  if type(id) == "string" then e.actor_domain = id:match("@([^@]+)$") end
  return e
end
function set_mode(m) mode = m end
`;

let sb: ScriptSandbox;
const figures: Record<string, string> = {};

function cpuMicros(fn: () => void): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

function perEvent(mode: string, pages = 8): number {
  sb.call('set_mode', [mode], 0);
  for (let i = 0; i < 3; i++) sb.transformPage(RAW);
  const micros = cpuMicros(() => {
    for (let i = 0; i < pages; i++) sb.transformPage(RAW);
  });
  return micros / (pages * PAGE.length);
}

beforeAll(async () => {
  sb = await ScriptSandbox.create({ name: 'cost.lua', chunkName: 'cost.lua', limits: { ...DEFAULT_LIMITS } });
  sb.loadScript(new TextEncoder().encode(`${await builtinScriptSource()}\n${SCRIPT}`));
  // Let the JIT settle before anything is measured.
  for (let i = 0; i < 5; i++) sb.transformPage(RAW);
});

afterAll(() => {
  sb.close();
  if (process.env.OKTAIL_PRINT_COSTS) console.log(`event of ${JSON.stringify(EVENT).length} bytes`, figures);
});

describe.runIf(measure)('cost of per-event hooks (1000-event pages, one call into Lua per page)', () => {
  it.each([
    ['identity', '`return e`'],
    ['enrich', 'adds a field from actor.alternateId'],
    ['filter', 'keeps one event type (half of the page)'],
    ['drop', 'returns nil (conversion into Lua only)'],
  ])('%s: %s', (mode) => {
    const micros = perEvent(mode);
    figures[mode] = `${micros.toFixed(1)} µs/event`;
    expect(micros).toBeLessThan(2000);
  });

  it('a hook call (after_page with a page description) costs microseconds, not milliseconds', () => {
    const state = {
      next: 'https://example.okta.com/api/v1/logs?after=1_1',
      last_uuid: 'u',
      last_published: 'p',
    };
    const page = {
      status: 200,
      url: state.next,
      headers: { 'content-type': 'application/json', 'x-rate-limit-remaining': '40' },
      links: { next: state.next, self: state.next },
      count: 1000,
      first: { uuid: 'a', published: 'p' },
      last: { uuid: 'b', published: 'p' },
    };
    for (let i = 0; i < 5000; i++) sb.call('after_page', [state, page], 2);
    const calls = 5000;
    const micros = cpuMicros(() => {
      for (let i = 0; i < calls; i++) sb.call('after_page', [state, page], 2);
    });
    figures.after_page = `${(micros / calls).toFixed(1)} µs/call`;
    expect(micros / calls).toBeLessThan(2000);
  });
});

/**
 * The same through `loadCollectionScript`, as a run uses it: the sandbox in its worker thread, a page per
 * message. CPU time counts every thread of the process; wall time is what a source waits for.
 */
describe.runIf(measure)('the same through the script worker (what a run pays)', () => {
  async function logicFor(mode: string): Promise<CollectionLogic> {
    const dir = await mkdtemp(join(tmpdir(), 'oktail-cost-'));
    const path = join(dir, 'cost.lua');
    await writeFile(path, `${await builtinScriptSource()}\n${SCRIPT}\nmode = "${mode}"\n`);
    return loadCollectionScript({ path });
  }

  /** µs per call: CPU of all threads, wall time, and the time this thread's event loop was busy. */
  async function measure(
    work: () => Promise<unknown>,
    times: number,
  ): Promise<{ cpu: number; wall: number; main: number }> {
    const start = process.cpuUsage();
    const loop = performance.eventLoopUtilization();
    const wallStart = performance.now();
    for (let i = 0; i < times; i++) await work();
    const used = process.cpuUsage(start);
    const busy = performance.eventLoopUtilization(loop).active;
    return {
      cpu: (used.user + used.system) / times,
      wall: ((performance.now() - wallStart) * 1000) / times,
      main: (busy * 1000) / times,
    };
  }

  it.each(['identity', 'enrich', 'filter', 'drop'])('%s', async (mode) => {
    const logic = await logicFor(mode);
    try {
      for (let i = 0; i < 20; i++) await logic.transformPage!(RAW);
      const { cpu, wall, main } = await measure(() => logic.transformPage!(RAW), 8);
      const per = (micros: number) => (micros / PAGE.length).toFixed(1);
      figures[`worker ${mode}`] = `µs/event: ${per(cpu)} CPU, ${per(wall)} wall, ${per(main)} main thread`;
      expect(cpu / PAGE.length).toBeLessThan(2000);
    } finally {
      await logic.close();
    }
  });

  it('after_page and load', async () => {
    const started = performance.now();
    const logic = await logicFor('identity');
    figures['worker load'] = `${(performance.now() - started).toFixed(0)} ms`;
    try {
      const page = {
        status: 200,
        url: '/',
        headers: { 'x-rate-limit-remaining': '40' },
        links: { next: 'https://example.okta.com/n' },
        count: 1000,
        first: { uuid: 'a', published: 'p' },
        last: { uuid: 'b', published: 'p' },
      };
      for (let i = 0; i < 500; i++) await logic.afterPage({ since: 's' }, page);
      const { cpu, wall, main } = await measure(() => logic.afterPage({ since: 's' }, page), 2000);
      figures['worker after_page'] =
        `µs/call: ${cpu.toFixed(1)} CPU, ${wall.toFixed(1)} wall, ${main.toFixed(1)} main thread`;
      expect(cpu).toBeLessThan(2000);
    } finally {
      await logic.close();
    }
  });
});
