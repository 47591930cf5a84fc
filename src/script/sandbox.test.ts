import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { isOktailError } from '../core/errors.js';
import { loadCollectionScript } from './collection-script.js';
import {
  DEFAULT_LIMITS,
  ScriptFailure,
  ScriptSandbox,
  TRANSFORM_ALLOWANCE_PER_EVENT,
  transformLimits,
  type ScriptLimits,
} from './sandbox.js';

const HOOKS = `
function initial_state(ctx) return { since = ctx.now } end
function cycle_request(state) return "/api/v1/logs" end
function after_page(state, page) return state, nil end
`;

const open: ScriptSandbox[] = [];

async function sandbox(
  source: string,
  limits: Partial<ScriptLimits> = {},
  log?: (level: string, message: string) => void,
): Promise<ScriptSandbox> {
  const sb = await ScriptSandbox.create({
    name: 'my.lua',
    chunkName: 'my.lua',
    limits: { ...DEFAULT_LIMITS, ...limits },
    log,
  });
  open.push(sb);
  sb.loadScript(new TextEncoder().encode(source));
  return sb;
}

/** Runs `expr` inside a function of the script and returns its single result. */
async function evaluate(expr: string): Promise<unknown> {
  const sb = await sandbox(`function probe() return ${expr} end`);
  return sb.call('probe', [], 1)[0];
}

function failureOf(fn: () => unknown): ScriptFailure {
  try {
    fn();
  } catch (err) {
    if (err instanceof ScriptFailure) return err;
    throw err;
  }
  throw new Error('expected a script failure');
}

async function scriptFile(source: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'oktail-script-'));
  const path = join(dir, 'my.lua');
  await writeFile(path, source);
  return path;
}

afterEach(() => {
  for (const sb of open.splice(0)) sb.close();
});

describe('sandbox: what a script cannot reach', () => {
  it.each(['os', 'io', 'debug', 'package', 'require', 'dofile', 'loadfile', 'warn', 'module'])(
    'has no %s global',
    async (name) => {
      expect(await evaluate(`type(${name})`)).toBe('nil');
    },
  );

  it('cannot find the libraries through _G, _ENV or a loaded chunk either', async () => {
    expect(await evaluate(`tostring(_G.os) .. tostring(_ENV.io) .. tostring(load("return debug")())`)).toBe(
      'nilnilnil',
    );
  });

  it('fails cleanly on os.execute and stays usable, since os is never opened', async () => {
    const sb = await sandbox(
      `function run() return os.execute("echo pwned") end\nfunction ok() return 1 end`,
    );
    const failure = failureOf(() => sb.call('run', [], 1));
    expect(failure.message).toBe("my.lua: run failed at line 1: attempt to index a nil value (global 'os')");
    expect(sb.call('ok', [], 1)).toEqual([1]);
  });

  it('has no string.dump, neither as a field nor as a string method', async () => {
    expect(await evaluate(`tostring(string.dump) .. tostring(("").dump)`)).toBe('nilnil');
  });

  it('refuses binary chunks in load, whatever mode the script asks for', async () => {
    const sb = await sandbox(`
      function probe()
        local chunk = "\\27LuaT\\0\\25\\147\\r\\n\\26\\n\\4\\8\\8xV\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0(w@"
        local f1, e1 = load(chunk)
        local f2, e2 = load(chunk, "x", "b")
        local f3, e3 = load(chunk, "x", "bt", {})
        return { tostring(f1), e1, tostring(f2), e2, tostring(f3), e3 }
      end`);
    const [result] = sb.call('probe', [], 1);
    expect(result).toEqual([
      'nil',
      expect.stringContaining("attempt to load a binary chunk (mode is 't')"),
      'nil',
      expect.stringContaining("attempt to load a binary chunk (mode is 't')"),
      'nil',
      expect.stringContaining("attempt to load a binary chunk (mode is 't')"),
    ]);
  });

  it('still loads text chunks, with the environment given', async () => {
    expect(await evaluate(`load("return 1 + 1")() + load("return x", "c", "t", { x = 40 })()`)).toBe(42);
  });

  it('gives a loaded chunk no way out of the limits', async () => {
    const sb = await sandbox(`function run() return load("while true do end")() end`, {
      instructionBudget: 100_000,
    });
    expect(failureOf(() => sb.call('run', [], 1)).kind).toBe('instructions');
  });

  it('allows collectgarbage("count") only', async () => {
    const sb = await sandbox(`
      function count() return math.type(collectgarbage("count")) end
      function collect() collectgarbage() end
      function stop() collectgarbage("stop") end`);
    expect(sb.call('count', [], 1)).toEqual(['float']);
    expect(failureOf(() => sb.call('collect', [], 0)).message).toMatch(
      /^my\.lua: collect failed at line 3: collectgarbage: only collectgarbage\("count"\) is available/,
    );
    expect(failureOf(() => sb.call('stop', [], 0)).line).toBe(4);
  });

  it('refuses __gc metamethods, which would run with the limits switched off', async () => {
    const sb = await sandbox(
      `function run() setmetatable({}, { __gc = function() while true do end end }) end`,
    );
    expect(failureOf(() => sb.call('run', [], 0)).message).toContain(
      '__gc metamethods are not available to scripts',
    );
  });

  it('sends print() to the log callback instead of stdout', async () => {
    const lines: string[] = [];
    const sb = await sandbox(`function run() print("hello", 42, nil) end`, {}, (level, message) =>
      lines.push(`${level} ${message}`),
    );
    sb.call('run', [], 0);
    expect(lines).toEqual(['info hello\t42\tnil']);
  });

  it('keeps the standard libraries a script needs', async () => {
    expect(
      await evaluate(
        `string.format("%s-%d", ("ab"):upper(), math.floor(2.5)) .. table.concat({ "x", "y" }) .. utf8.char(233) .. coroutine.wrap(function() coroutine.yield("!") end)()`,
      ),
    ).toBe('AB-2xyé!');
  });
});

describe('sandbox: limits', () => {
  const tight = { instructionBudget: 200_000, deadlineMs: 5_000 };

  it('stops an infinite loop in the top-level chunk', async () => {
    const path = await scriptFile(`${HOOKS}\nwhile true do end\n`);
    await expect(loadCollectionScript({ path, limits: tight })).rejects.toThrow(
      `${path}: top-level code exceeded its instruction budget (200000) at line 6`,
    );
  });

  it('stops an infinite loop in a hook and names the hook, the budget and the line', async () => {
    const sb = await sandbox(`function after_page(state, page)\n  while true do end\nend`, tight);
    const failure = failureOf(() => sb.call('after_page', [{}, {}], 2));
    expect(failure.message).toBe('my.lua: after_page exceeded its instruction budget (200000) at line 2');
    expect(failure.code).toBe('SCRIPT_ERROR');
    expect(failure.retryable).toBe(true);
  });

  it('stops an infinite loop in transform', async () => {
    const sb = await sandbox(`function transform(e)\n  while true do end\nend`, tight);
    // A page transform gets the per-call budget plus an allowance per event (here one event).
    expect(failureOf(() => sb.transform([{ uuid: 'a' }])).message).toBe(
      'my.lua: transform exceeded its instruction budget (220000) at line 2',
    );
  });

  it('stops an infinite loop in every hook of a loaded script', async () => {
    const path = await scriptFile(
      [
        'spin = true',
        'function initial_state(ctx) while spin do end return {} end',
        'function cycle_request(state) while spin do end return "/" end',
        'function after_page(state, page) while spin do end return state end',
        'function transform(e) while spin do end return e end',
      ].join('\n'),
    );
    const logic = await loadCollectionScript({ path, limits: tight });
    const page = { status: 200, url: '/', headers: {}, links: {}, count: 0, first: null, last: null };
    const budget = (hook: string, line: number, units = 200000) =>
      `${path}: ${hook} exceeded its instruction budget (${units}) at line ${line}`;
    try {
      await expect(logic.initialState({ startFrom: null, now: '2025-06-01T00:00:00.000Z' })).rejects.toThrow(
        budget('initial_state', 2),
      );
      await expect(logic.cycleRequest({})).rejects.toThrow(budget('cycle_request', 3));
      await expect(logic.afterPage({}, page)).rejects.toThrow(budget('after_page', 4));
      await expect(logic.transform!([{ uuid: 'a' }])).rejects.toThrow(budget('transform', 5, 220000));
    } finally {
      await logic.close();
    }
  });

  it('gives a page transform room that grows with the page', () => {
    expect(transformLimits({ instructionBudget: 1000, deadlineMs: 100, memoryBytes: 1 }, 1000)).toEqual({
      instructionBudget: 1000 + 1000 * TRANSFORM_ALLOWANCE_PER_EVENT.instructions,
      deadlineMs: 100 + 1000 * TRANSFORM_ALLOWANCE_PER_EVENT.deadlineMs,
      memoryBytes: 1,
    });
  });

  it('cannot be escaped by catching the limit error with pcall', async () => {
    const sb = await sandbox(
      `function run()
         local function spin() while true do end end
         while true do pcall(spin) end
       end`,
      tight,
    );
    expect(failureOf(() => sb.call('run', [], 0)).kind).toBe('instructions');
  });

  it('cannot be escaped through coroutines either', async () => {
    const sb = await sandbox(
      `function run()
         while true do
           local co = coroutine.wrap(function() for i = 1, 900 do end end)
           pcall(co)
         end
       end`,
      { instructionBudget: 1e12, deadlineMs: 200 },
    );
    const started = performance.now();
    expect(failureOf(() => sb.call('run', [], 0)).kind).toBe('deadline');
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('enforces the wall-clock deadline when the budget is large', async () => {
    const sb = await sandbox(`function run()\n  while true do local s = string.rep("x", 100) end\nend`, {
      instructionBudget: 1e12,
      deadlineMs: 100,
    });
    const started = performance.now();
    const failure = failureOf(() => sb.call('run', [], 0));
    expect(failure.message).toBe('my.lua: run exceeded its deadline (100 ms) at line 2');
    expect(performance.now() - started).toBeLessThan(3_000);
  });

  it('caps memory with a clear error and stays usable after the memory is released', async () => {
    const sb = await sandbox(
      `function bomb()
         local t = {}
         while true do t[#t + 1] = string.rep("x", 1000) .. #t end
       end
       function ok() return "still here" end`,
      { memoryBytes: 8 * 1024 * 1024, deadlineMs: 10_000 },
    );
    const failure = failureOf(() => sb.call('bomb', [], 0));
    expect(failure.message).toBe('my.lua: bomb exceeded its memory limit (8 MiB)');
    expect(failure.kind).toBe('memory');
    expect(sb.call('ok', [], 1)).toEqual(['still here']);
  });

  it('refuses one huge allocation without touching the process', async () => {
    const sb = await sandbox(`function bomb() return string.rep("x", 1e9) end`, {
      memoryBytes: 8 * 1024 * 1024,
    });
    expect(failureOf(() => sb.call('bomb', [], 1)).kind).toBe('memory');
    expect(sb.memoryUsed()).toBeLessThan(8 * 1024 * 1024);
  });

  it('counts the limits per call, so a later call gets a fresh budget', async () => {
    const sb = await sandbox(
      `function work(n) local x = 0 for i = 1, n do x = x + i end return x end`,
      tight,
    );
    expect(failureOf(() => sb.call('work', [1_000_000], 1)).kind).toBe('instructions');
    for (let i = 0; i < 5; i++) expect(sb.call('work', [10_000], 1)).toEqual([50_005_000]);
  });

  it('survives unbounded recursion through pcall (C stack)', async () => {
    const sb = await sandbox(
      `function run() local function f() return pcall(f) end return f() end\nfunction ok() return 1 end`,
    );
    // Lua's own C-stack guard answers; whatever it says, the process and the sandbox carry on.
    try {
      sb.call('run', [], 1);
    } catch (err) {
      expect(err).toBeInstanceOf(ScriptFailure);
    }
    expect(sb.call('ok', [], 1)).toEqual([1]);
  });

  it('stops unbounded Lua recursion with a stack overflow error', async () => {
    // Growing the stack to Lua's limit takes a while on a busy machine; the deadline is not what is tested.
    const sb = await sandbox(`local function f(n) return 1 + f(n + 1) end\nfunction run() return f(1) end`, {
      deadlineMs: 30_000,
    });
    expect(failureOf(() => sb.call('run', [], 1)).message).toMatch(
      /^my\.lua: run failed at line 1: stack overflow/,
    );
  });
});

describe('sandbox: errors', () => {
  it('reports the script, hook and line of a runtime error', async () => {
    const sb = await sandbox(
      `function after_page(state, page)\n  local x = 1\n  return page.links.next\nend`,
    );
    const failure = failureOf(() => sb.call('after_page', [{}, {}], 2));
    expect(failure.message).toBe(
      "my.lua: after_page failed at line 3: attempt to index a nil value (field 'links')",
    );
    expect(failure).toMatchObject({ code: 'SCRIPT_ERROR', retryable: true, hook: 'after_page', line: 3 });
    expect(isOktailError(failure, 'SCRIPT_ERROR')).toBe(true);
  });

  it('finds the line of error() raised without a position, or with a table', async () => {
    const sb = await sandbox(
      `function a()\n  error("plain", 0)\nend\nfunction b()\n\n  error({ code = 1 })\nend`,
    );
    expect(failureOf(() => sb.call('a', [], 0)).message).toBe('my.lua: a failed at line 2: plain');
    expect(failureOf(() => sb.call('b', [], 0)).message).toBe(
      'my.lua: b failed at line 6: (error object is a table value)',
    );
  });

  it('blames the calling line for a bad argument to a host function', async () => {
    const sb = await sandbox(`function run()\n  return parse_time({})\nend`);
    expect(failureOf(() => sb.call('run', [], 1)).message).toBe(
      "my.lua: run failed at line 2: bad argument #1 to 'parse_time' (string expected, got table)",
    );
  });

  it('reports a syntax error with its line and does not retry it', async () => {
    const path = await scriptFile(`${HOOKS}\nlocal x = = 1\n`);
    const err: unknown = await loadCollectionScript({ path }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScriptFailure);
    expect((err as ScriptFailure).message).toBe(
      `${path}: syntax error at line 6: unexpected symbol near '='`,
    );
    expect((err as ScriptFailure).retryable).toBe(false);
  });

  it('reports a call of a hook that is not defined', async () => {
    const sb = await sandbox(`x = 1`);
    expect(failureOf(() => sb.call('after_page', [], 2)).message).toBe(
      'my.lua: after_page failed: after_page is not defined as a function',
    );
  });

  it('stays usable after every kind of failure', async () => {
    const sb = await sandbox(
      `function boom() error("x") end
       function spin() while true do end end
       function bomb() return string.rep("x", 1e9) end
       function ok(n) return n + 1 end`,
      { instructionBudget: 100_000, memoryBytes: 8 * 1024 * 1024 },
    );
    for (let i = 0; i < 20; i++) {
      expect(() => sb.call('boom', [], 0)).toThrow(ScriptFailure);
      expect(() => sb.call('spin', [], 0)).toThrow(ScriptFailure);
      expect(() => sb.call('bomb', [], 1)).toThrow(ScriptFailure);
      expect(sb.call('ok', [i], 1)).toEqual([i + 1]);
    }
  });
});

describe('sandbox: repeated calls (the doString stack trap)', () => {
  it('returns the right values across 5,000 calls that each return several values', async () => {
    const sb = await sandbox(`function three(n) return n, n * 2, { n = n } end`);
    for (let i = 0; i < 5_000; i++) {
      expect(sb.call('three', [i], 3)).toEqual([i, i * 2, { n: i }]);
    }
  });

  it('survives 1,000 failing calls interleaved with good ones', async () => {
    const sb = await sandbox(`function bad() local t = nil; return t.x end\nfunction good(n) return n end`);
    for (let i = 0; i < 1_000; i++) {
      expect(() => sb.call('bad', [], 1)).toThrow(ScriptFailure);
      expect(sb.call('good', [i], 1)).toEqual([i]);
    }
  });
});

describe('sandbox: host API', () => {
  it('now() is ISO 8601 in UTC with milliseconds', async () => {
    expect(await evaluate('now()')).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  it('parse_time and format_time convert both ways; parse_time answers nil and a message when invalid', async () => {
    const sb = await sandbox(`
      function probe()
        local ms = parse_time("2025-01-15T09:30:00.250+01:00")
        local bad, err = parse_time("2017-09-31T22:23:07.777Z")
        return { ms = ms, int = math.type(ms), back = format_time(ms), bad = tostring(bad), err = err }
      end`);
    expect(sb.call('probe', [], 1)[0]).toEqual({
      ms: Date.UTC(2025, 0, 15, 8, 30, 0, 250),
      int: 'integer',
      back: '2025-01-15T08:30:00.250Z',
      bad: 'nil',
      err: 'day out of range in "2017-09-31T22:23:07.777Z"',
    });
  });

  it('url_encode escapes everything outside the unreserved set, byte by byte', async () => {
    expect(await evaluate(`url_encode("2025-01-15T08:30:00.000+01:00 é&=/~")`)).toBe(
      '2025-01-15T08%3A30%3A00.000%2B01%3A00%20%C3%A9%26%3D%2F~',
    );
  });

  it('json_encode and json_decode round-trip, with json.null', async () => {
    expect(
      await evaluate(
        `json_encode(json_decode('{"a":[1,2.5,null,{}],"b":null,"c":"x"}').a) .. json_encode(json.null)`,
      ),
    ).toBe('[1,2.5,null,{}]null');
    expect(await evaluate(`select(2, json_decode("{nope"))`)).toMatch(/JSON/);
  });

  it('log() forwards levels and limits the lines one call may write', async () => {
    const lines: [string, string][] = [];
    const sb = await sandbox(
      `function chatty() for i = 1, 100 do log("debug", "line " .. i) end end
       function wrong() log("loud", "x") end`,
      {},
      (level, message) => lines.push([level, message]),
    );
    sb.call('chatty', [], 0);
    expect(lines).toHaveLength(21);
    expect(lines[0]).toEqual(['debug', 'line 1']);
    expect(lines[20]).toEqual([
      'warn',
      'my.lua: chatty wrote 80 more log lines than the 20 allowed per call; they were dropped',
    ]);
    expect(failureOf(() => sb.call('wrong', [], 0)).message).toContain(
      "bad argument #1 to 'log' (one of debug, info, warn, error expected)",
    );
  });

  it('lists global functions with the line they are defined at', async () => {
    const sb = await sandbox(
      `x = 1\n\nfunction first() end\nlocal function hidden() end\nfunction second()\nend`,
    );
    const functions = sb.globalFunctions();
    expect(functions.get('first')).toBe(3);
    expect(functions.get('second')).toBe(5);
    expect(functions.has('hidden')).toBe(false);
  });
});
