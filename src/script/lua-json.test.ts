import { readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JsonObject } from '../core/json.js';
import { DEFAULT_LIMITS, ScriptFailure, ScriptSandbox } from './sandbox.js';

const EVENT = JSON.parse(
  readFileSync(new URL('./testdata/system-log-event.json', import.meta.url), 'utf8'),
) as JsonObject;

const SCRIPT = `
function echo(...) return ... end
function transform(e) return e end
function types(v)
  local out = {}
  for k, x in pairs(v) do
    out[k] = type(x) == "number" and math.type(x) or (x == json.null and "json.null" or type(x))
  end
  return out
end
function make(kind)
  if kind == "empty" then return {} end
  if kind == "empty_array" then return json.array() end
  if kind == "list" then return { "a", "b", "c" } end
  if kind == "holes" then local t = json.array({ 1, 2, 3 }); t[2] = nil; return t end
  if kind == "sparse" then return { [1] = "a", [1000000] = "b" } end
  if kind == "mixed" then return { 1, 2, x = "y" } end
  if kind == "numeric_keys" then return { [1.5] = "a", [-1] = "b", [0] = "c" } end
  if kind == "nan" then return { x = 0 / 0 } end
  if kind == "function" then return { deep = { f = print } } end
  if kind == "cycle" then local t = {}; t.self = t; return t end
  if kind == "bool_key" then return { [true] = 1 } end
end
`;

let sb: ScriptSandbox;

beforeAll(async () => {
  sb = await ScriptSandbox.create({ name: 'json.lua', chunkName: 'json.lua', limits: { ...DEFAULT_LIMITS } });
  sb.loadScript(new TextEncoder().encode(SCRIPT));
});

afterAll(() => sb.close());

describe('JSON between the host and Lua', () => {
  it('round-trips hook arguments exactly: strings, integers, floats, booleans, nesting', () => {
    const state: JsonObject = {
      s: 'plain',
      u: 'ünïcödé ✓ 🎉 \u0000 inside',
      long: 'x'.repeat(100_000),
      i: 42,
      neg: -7,
      big: 2 ** 53 - 1,
      huge: 1e300,
      f: 0.1 + 0.2,
      t: true,
      b: false,
      nested: { a: [1, 'two', { three: 3 }], empty: {} },
    };
    expect(sb.call('echo', [state], 1)[0]).toEqual(state);
  });

  it('gives integers the integer subtype in Lua and floats the float subtype', () => {
    expect(sb.call('types', [{ i: 3, f: 3.5, big: 2 ** 60, s: 'x', t: true }], 1)[0]).toEqual({
      i: 'integer',
      f: 'float',
      big: 'float',
      s: 'string',
      t: 'boolean',
    });
  });

  it('drops JSON null from hook arguments (nil in Lua) but keeps it in events (json.null)', () => {
    expect(sb.call('types', [{ a: null, b: 1 }], 1)[0]).toEqual({ b: 'integer' });
    expect(sb.call('echo', [{ a: null, b: [null, 1] }], 1)[0]).toEqual({ b: [null, 1] });
    expect(sb.transform([{ a: null, b: 1 }])).toEqual([{ a: null, b: 1 }]);
  });

  it('gives back Okta events unchanged through `return e`, nulls, empty objects and key order included', () => {
    const events = [EVENT, { ...EVENT, uuid: 'second', extra: [1.5, -2, 'x'] }, EVENT];
    const back = sb.transform(events);
    expect(back).toEqual(events);
    for (let i = 0; i < events.length; i++) {
      expect(JSON.stringify(back[i])).toBe(JSON.stringify(events[i]));
    }
  });

  it('keeps an empty array an array and an empty object an object', () => {
    expect(sb.transform([{ arr: [], obj: {}, nested: [[], {}] }])).toEqual([
      { arr: [], obj: {}, nested: [[], {}] },
    ]);
    expect(sb.call('make', ['empty'], 1)[0]).toEqual({});
    expect(sb.call('make', ['empty_array'], 1)[0]).toEqual([]);
  });

  it('reads tables with keys 1..n as arrays, holes as null, the rest as objects', () => {
    expect(sb.call('make', ['list'], 1)[0]).toEqual(['a', 'b', 'c']);
    expect(sb.call('make', ['holes'], 1)[0]).toEqual([1, null, 3]);
    expect(sb.call('make', ['sparse'], 1)[0]).toEqual({ '1': 'a', '1000000': 'b' });
    expect(sb.call('make', ['mixed'], 1)[0]).toEqual({ '1': 1, '2': 2, x: 'y' });
    expect(sb.call('make', ['numeric_keys'], 1)[0]).toEqual({ '1.5': 'a', '-1': 'b', '0': 'c' });
  });

  it('keeps a "__proto__" key as data', () => {
    const event = JSON.parse('{"__proto__":{"polluted":true},"x":1}') as JsonObject;
    const [back] = sb.transform([event]);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(JSON.stringify(back)).toBe('{"__proto__":{"polluted":true},"x":1}');
  });

  it.each([
    ['nan', 'result #1 of make is not JSON at x: NaN is not a JSON number'],
    ['function', 'result #1 of make is not JSON at deep.f: a function value is not JSON'],
    ['cycle', 'nested more than 64 levels deep (does a table contain itself?)'],
    ['bool_key', 'a boolean key cannot be a JSON object key'],
  ])('refuses a %s value with the path to it', (kind, message) => {
    expect(() => sb.call('make', [kind], 1)).toThrow(ScriptFailure);
    expect(() => sb.call('make', [kind], 1)).toThrow(message);
  });
});
