import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import type { JsonObject } from '../core/json.js';
import { builtinScriptSource } from './collection-script.js';
import { DEFAULT_LIMITS, ScriptSandbox } from './sandbox.js';

const EVENT = JSON.parse(
  readFileSync(new URL('./testdata/system-log-event.json', import.meta.url), 'utf8'),
) as JsonObject;

const CYCLES = 20_000;

describe('soak', () => {
  it(`runs ${CYCLES} cycles (cycle_request, after_page, transform) without growing memory or the function table`, async () => {
    const source = `${await builtinScriptSource()}\nfunction transform(e) e.seen = (e.seen or 0) + 1 return e end\n`;
    const sb = await ScriptSandbox.create({
      name: 'okta.lua',
      chunkName: 'okta.lua',
      limits: { ...DEFAULT_LIMITS },
    });
    try {
      sb.loadScript(new TextEncoder().encode(source));
      let state: JsonObject = { since: '2025-06-01T12:00:00.000Z' };
      const cycle = (i: number): void => {
        const [url] = sb.call('cycle_request', [state], 1);
        expect(typeof url).toBe('string');
        const next = `https://example.okta.com/api/v1/logs?limit=1000&after=${1748779200000 + i}_1`;
        const page = {
          status: 200,
          url: url as string,
          headers: { 'x-rate-limit-remaining': String(i % 50) },
          links: { next, self: url as string },
          count: 1,
          first: { uuid: `uuid-${i}`, published: '2025-06-01T12:00:00.000Z' },
          last: { uuid: `uuid-${i}`, published: '2025-06-01T12:00:00.000Z' },
        };
        const [newState, nextUrl] = sb.call('after_page', [state, page], 2);
        expect(nextUrl).toBeUndefined();
        state = newState as JsonObject;
        const [event] = sb.transform([{ ...EVENT, uuid: `uuid-${i}` }]);
        expect(event?.seen).toBe(1);
      };

      for (let i = 0; i < 500; i++) cycle(i);
      sb.collectGarbage();
      const before = { lua: sb.memoryUsed(), heap: sb.heapBytes(), table: sb.functionTableProbe() };

      for (let i = 500; i < 500 + CYCLES; i++) cycle(i);
      sb.collectGarbage();
      const after = { lua: sb.memoryUsed(), heap: sb.heapBytes(), table: sb.functionTableProbe() };

      expect(state.last_uuid).toBe(`uuid-${500 + CYCLES - 1}`);
      // A leak of even 50 bytes a cycle would show as 1 MB here.
      expect(after.lua - before.lua).toBeLessThan(64 * 1024);
      expect(after.heap - before.heap).toBeLessThanOrEqual(1024 * 1024);
      expect(after.table).toBe(before.table);
    } finally {
      sb.close();
    }
  }, 60_000);
});
