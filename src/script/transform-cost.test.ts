import { readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JsonObject } from '../core/json.js';
import { builtinScriptSource } from './collection-script.js';
import { DEFAULT_LIMITS, ScriptSandbox } from './sandbox.js';

/**
 * Measures what per-event work costs (the figures in docs/scripting.md come from here; run with
 * OKTAIL_PRINT_COSTS=1 to print them). CPU time, not wall time, so a busy machine skews it less. The
 * assertions only catch an order-of-magnitude regression.
 */

const EVENT = JSON.parse(
  readFileSync(new URL('./testdata/system-log-event.json', import.meta.url), 'utf8'),
) as JsonObject;
// Half the page is of the type the filter keeps.
const PAGE = Array.from({ length: 1000 }, (_, i) => ({
  ...structuredClone<JsonObject>(EVENT),
  uuid: `u${i}`,
  eventType: i % 2 === 0 ? 'user.session.start' : 'policy.evaluate_sign_on',
}));

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
  for (let i = 0; i < 3; i++) sb.transform(PAGE);
  const micros = cpuMicros(() => {
    for (let i = 0; i < pages; i++) sb.transform(PAGE);
  });
  return micros / (pages * PAGE.length);
}

beforeAll(async () => {
  sb = await ScriptSandbox.create({ name: 'cost.lua', chunkName: 'cost.lua', limits: { ...DEFAULT_LIMITS } });
  sb.loadScript(new TextEncoder().encode(`${await builtinScriptSource()}\n${SCRIPT}`));
  // Let the JIT settle before anything is measured.
  for (let i = 0; i < 5; i++) sb.transform(PAGE);
});

afterAll(() => {
  sb.close();
  if (process.env.OKTAIL_PRINT_COSTS) console.log(`event of ${JSON.stringify(EVENT).length} bytes`, figures);
});

describe('cost of per-event hooks (1000-event pages, one call into Lua per page)', () => {
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
