import { errorMessage } from '../core/errors.js';
import type { JsonObject, JsonValue } from '../core/json.js';
import {
  formatIsoTime,
  LOG_LEVELS,
  MAX_LOG_LINES_PER_CALL,
  MAX_LOG_MESSAGE,
  parseIsoTime,
  urlEncodeBytes,
  type ScriptLogLevel,
} from './host-api.js';
import {
  LUA_REGISTRYINDEX,
  LUA_RIDX_GLOBALS,
  LUA_TBOOLEAN,
  LUA_TFUNCTION,
  LUA_TNUMBER,
  LUA_TSTRING,
  LUA_TTABLE,
  LUA_TYPE_NAMES,
} from './lua-api.js';
import { ConversionError, JsonBridge } from './lua-json.js';
import {
  LuaFailure,
  ScriptFailure,
  transformLimits,
  type ScriptLimits,
  type ScriptLog,
} from './failure.js';
import { HOST_CHUNK, LuaArgumentError, LuaRuntime } from './lua-runtime.js';

export {
  DEFAULT_LIMITS,
  ScriptFailure,
  TRANSFORM_ALLOWANCE_PER_EVENT,
  transformLimits,
  type ScriptLimits,
  type ScriptLog,
} from './failure.js';

export interface SandboxOptions {
  /** How errors name the script: its path, or "okta.lua (built-in)". */
  name: string;
  /** Chunk name inside Lua, as it appears in the script's own error messages (e.g. "my.lua"). */
  chunkName: string;
  limits: ScriptLimits;
  log?: ScriptLog | undefined;
  /** Clock behind the script's `now()`; tests pin it. */
  clock?: (() => number) | undefined;
}

/**
 * The host's own Lua, run once before the script with the library functions still intact. It narrows what
 * scripts can reach (see docs/scripting.md) and keeps the originals only in locals no script can see.
 */
const PRELUDE = `
local host = ...
local raw_load, raw_setmetatable, raw_getmetatable, raw_collect = load, setmetatable, getmetatable, collectgarbage
local rawget, type, error, select, tostring, concat = rawget, type, error, select, tostring, table.concat

-- Text chunks only: Lua does not verify bytecode, and a crafted binary chunk can corrupt memory.
function load(chunk, chunkname, mode, ...)
  if select("#", ...) > 0 then return raw_load(chunk, chunkname, "t", (...)) end
  return raw_load(chunk, chunkname, "t")
end

-- Finalizers run with debug hooks switched off, out of reach of the instruction budget and the deadline.
function setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not available to scripts", 2)
  end
  return raw_setmetatable(t, mt)
end

-- A full collection runs in C where no limit applies; reading the heap size is harmless.
function collectgarbage(opt)
  if opt == "count" then return raw_collect("count") end
  error("collectgarbage: only collectgarbage(\\"count\\") is available to scripts", 2)
end

dofile, loadfile, require, warn = nil, nil, nil, nil
string.dump = nil

local host_log = host.log
function print(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  host_log("info", concat(parts, "\\t"))
end

now, parse_time, format_time, url_encode, log = host.now, host.parse_time, host.format_time, host.url_encode, host.log

local array_mt = { __metatable = "json.array" }
local function array(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then error("json.array expects a table", 2) end
  if raw_getmetatable(t) == "json.array" then return t end
  return raw_setmetatable(t, array_mt)
end
json = { null = host.null, array = array, encode = host.json_encode, decode = host.json_decode }
json_encode, json_decode = host.json_encode, host.json_decode

-- One call per page: the loop stays inside Lua instead of crossing from JS once per event.
local function transform_page(events, n)
  local fn = transform
  if type(fn) ~= "function" then error("transform is not a function", 0) end
  local out = {}
  for i = 1, n do
    local result = fn(events[i])
    if result == nil then result = false end
    out[i] = result
  end
  return out
end

return { array_mt = array_mt, transform_page = transform_page, collect = function() raw_collect("collect") end }
`;

const encoder = new TextEncoder();

/**
 * A script loaded into its own Lua runtime, with the host API installed and the sandbox applied. Converts
 * hook arguments and results between JSON and Lua and reports failures as ScriptFailure.
 */
export class ScriptSandbox {
  private bridge: JsonBridge | null = null;
  private internalsRef = 0;
  private logLines = 0;
  private logDropped = 0;

  private constructor(
    private readonly runtime: LuaRuntime,
    private readonly options: SandboxOptions,
  ) {}

  static async create(options: SandboxOptions): Promise<ScriptSandbox> {
    const runtime = await LuaRuntime.create(options.chunkName);
    const sandbox = new ScriptSandbox(runtime, options);
    try {
      sandbox.install();
    } catch (err) {
      runtime.close();
      throw err;
    }
    return sandbox;
  }

  get name(): string {
    return this.options.name;
  }

  get limits(): ScriptLimits {
    return this.options.limits;
  }

  /** True after a failure of the runtime itself (not of the script): the sandbox must be rebuilt. */
  get broken(): boolean {
    return this.runtime.isBroken;
  }

  /**
   * Compiles the script and runs its top-level chunk under the per-call limits. Failures here are not
   * retryable: the same file fails the same way until someone edits it.
   */
  loadScript(source: Uint8Array): void {
    let syntax = null as LuaFailure | null;
    this.run(
      'top-level code',
      (L) => {
        syntax = this.runtime.load(L, source, this.options.chunkName);
        if (syntax === null) this.runtime.api._lua_callk(L, 0, 0, 0, 0);
      },
      false,
    );
    if (syntax !== null) throw this.failure('top-level code', syntax, false, this.options.limits);
  }

  /** The Lua type of a global (`nil` when absent), read raw so no `_G` metamethod runs. */
  globalType(name: string): string {
    let type = 'nil';
    this.run(`reading ${name}`, (L) => {
      const api = this.runtime.api;
      api._lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
      this.runtime.pushString(L, name);
      type = LUA_TYPE_NAMES[api._lua_rawget(L, -2)] ?? 'unknown';
    });
    return type;
  }

  /** Global functions defined by the script, with the line each is defined at. */
  globalFunctions(): Map<string, number | null> {
    const found = new Map<string, number | null>();
    this.run('listing globals', (L) => {
      const api = this.runtime.api;
      api._lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
      const globals = api._lua_gettop(L);
      api._lua_pushnil(L);
      while (api._lua_next(L, globals) !== 0) {
        if (api._lua_type(L, -2) === LUA_TSTRING && api._lua_type(L, -1) === LUA_TFUNCTION) {
          const name = this.runtime.readString(L, -2);
          const line = this.runtime.functionLine(L, -1);
          if (line !== null) found.set(name, line);
        }
        api._lua_settop(L, -2);
      }
    });
    return found;
  }

  /** A global's value as JSON (`undefined` when absent), read raw like `globalType`. */
  readGlobal(name: string): JsonValue | undefined {
    let value: JsonValue | undefined;
    this.run(`reading ${name}`, (L) => {
      const api = this.runtime.api;
      api._lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
      this.runtime.pushString(L, name);
      api._lua_rawget(L, -2);
      value = this.json().read(L, -1);
    });
    return value;
  }

  /**
   * Calls the global function `hook` with JSON arguments (JSON null arrives as nil) and returns `resultCount`
   * results as JSON (`undefined` for nil). Non-JSON results (functions...) fail the call.
   */
  call(hook: string, args: readonly JsonValue[], resultCount: number): (JsonValue | undefined)[] {
    const results: (JsonValue | undefined)[] = [];
    this.run(hook, (L) => {
      const api = this.runtime.api;
      if (api._lua_checkstack(L, args.length + resultCount + 4) === 0) throw new Error('Lua stack overflow');
      if (api._lua_getglobal(L, this.runtime.cstring(hook)) !== LUA_TFUNCTION) {
        throw new Error(`${hook} is not defined as a function`);
      }
      for (const arg of args) this.json().push(L, arg, { nullAsNil: true });
      api._lua_callk(L, args.length, resultCount, 0, 0);
      const first = api._lua_gettop(L) - resultCount + 1;
      for (let i = 0; i < resultCount; i++) {
        try {
          results.push(this.json().read(L, first + i));
        } catch (err) {
          throw resultError(hook, i, err);
        }
      }
    });
    return results;
  }

  /**
   * Runs the script's `transform` over a page in one call into Lua. Returns one entry per event: the event
   * (as the script left it) or null when the script dropped it by returning nil or false.
   */
  transform(events: readonly JsonObject[]): (JsonObject | null)[] {
    const results: (JsonObject | null)[] = [];
    this.run(
      'transform',
      (L) => {
        const api = this.runtime.api;
        const json = this.json();
        const keyOrder = new Map<number, JsonObject>();
        api._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(this.internalsRef));
        api._lua_getfield(L, -1, this.runtime.cstring('transform_page'));
        api._lua_createtable(L, events.length, 0);
        for (let i = 0; i < events.length; i++) {
          json.push(L, events[i], { nullAsNil: false, keyOrder });
          api._lua_rawseti(L, -2, BigInt(i + 1));
        }
        api._lua_pushinteger(L, BigInt(events.length));
        api._lua_callk(L, 2, 1, 0, 0);
        const out = api._lua_gettop(L);
        for (let i = 0; i < events.length; i++) {
          const type = api._lua_rawgeti(L, out, BigInt(i + 1));
          if (type === LUA_TBOOLEAN && api._lua_toboolean(L, -1) === 0) {
            results.push(null);
          } else if (type === LUA_TTABLE) {
            let event: JsonValue | undefined;
            try {
              event = json.read(L, -1, keyOrder);
            } catch (err) {
              throw eventError(i, err);
            }
            if (event === null || typeof event !== 'object' || Array.isArray(event)) {
              throw new Error(
                `transform returned an array for event ${i + 1}; it must return an event table or nil`,
              );
            }
            results.push(event);
          } else {
            const got = LUA_TYPE_NAMES[type] ?? 'unknown';
            throw new Error(
              `transform returned a ${got} for event ${i + 1}; it must return an event table or nil`,
            );
          }
          api._lua_settop(L, -2);
        }
      },
      true,
      transformLimits(this.options.limits, events.length),
    );
    return results;
  }

  /** Runs a full garbage collection (which scripts themselves may not ask for). */
  collectGarbage(): void {
    this.run('collecting garbage', (L) => {
      const api = this.runtime.api;
      api._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(this.internalsRef));
      api._lua_getfield(L, -1, this.runtime.cstring('collect'));
      api._lua_callk(L, 0, 0, 0, 0);
    });
  }

  /** Bytes the script's Lua state holds. */
  memoryUsed(): number {
    return this.runtime.memoryUsed();
  }

  /** Next free slot of the module's function table: grows only if functions are registered and never freed. */
  functionTableProbe(): number {
    return this.runtime.functionTableProbe();
  }

  heapBytes(): number {
    return this.runtime.heapBytes();
  }

  close(): void {
    this.runtime.close();
  }

  private json(): JsonBridge {
    if (this.bridge === null) throw new Error('the sandbox is not installed');
    return this.bridge;
  }

  private run(hook: string, body: (L: number) => void, retryable = true, limits = this.options.limits): void {
    this.logLines = 0;
    this.logDropped = 0;
    try {
      this.runtime.run(body, limits);
    } catch (err) {
      if (err instanceof LuaFailure) throw this.failure(hook, err, retryable, limits);
      throw err;
    } finally {
      if (this.logDropped > 0) {
        this.emitLog(
          'warn',
          `${this.options.name}: ${hook} wrote ${this.logDropped} more log lines than the ${MAX_LOG_LINES_PER_CALL} allowed per call; they were dropped`,
        );
      }
    }
  }

  private failure(
    hook: string,
    failure: LuaFailure,
    retryable: boolean,
    limits: ScriptLimits,
  ): ScriptFailure {
    const { name } = this.options;
    const at = failure.line === null ? '' : ` at line ${failure.line}`;
    let detail: string;
    switch (failure.kind) {
      case 'instructions':
        detail = `${hook} exceeded its instruction budget (${limits.instructionBudget})`;
        break;
      case 'deadline':
        detail = `${hook} exceeded its deadline (${limits.deadlineMs} ms)`;
        break;
      case 'memory':
        detail = `${hook} exceeded its memory limit (${formatBytes(limits.memoryBytes)})`;
        break;
      case 'syntax':
        detail = `syntax error: ${failure.message}`;
        return new ScriptFailure(
          `${name}: syntax error${at}: ${failure.message}`,
          hook,
          failure.kind,
          failure.line,
          detail,
          false,
        );
      default:
        detail = `${hook} failed: ${failure.message}`;
        return new ScriptFailure(
          `${name}: ${hook} failed${at}: ${failure.message}`,
          hook,
          failure.kind,
          failure.line,
          detail,
          retryable,
          failure,
        );
    }
    return new ScriptFailure(`${name}: ${detail}${at}`, hook, failure.kind, failure.line, detail, retryable);
  }

  /** Opens the safe libraries, registers the host API and runs the prelude. */
  private install(): void {
    const runtime = this.runtime;
    const api = runtime.api;
    const host: [string, number][] = [
      ['now', runtime.cfunction((L) => this.hostNow(L))],
      ['parse_time', runtime.cfunction((L) => this.hostParseTime(L))],
      ['format_time', runtime.cfunction((L) => this.hostFormatTime(L))],
      ['url_encode', runtime.cfunction((L) => this.hostUrlEncode(L))],
      ['log', runtime.cfunction((L) => this.hostLog(L))],
      ['json_encode', runtime.cfunction((L) => this.hostJsonEncode(L))],
      ['json_decode', runtime.cfunction((L) => this.hostJsonDecode(L))],
    ];
    let preludeFailure = null as LuaFailure | null;
    let arrayMetatableRef = 0;
    runtime.run(
      (L) => {
        api._luaopen_base(L);
        api._lua_settop(L, 0);
        const libraries: [string, (L: number) => number][] = [
          ['table', (s) => api._luaopen_table(s)],
          ['string', (s) => api._luaopen_string(s)],
          ['math', (s) => api._luaopen_math(s)],
          ['utf8', (s) => api._luaopen_utf8(s)],
          ['coroutine', (s) => api._luaopen_coroutine(s)],
        ];
        for (const [name, open] of libraries) {
          open(L);
          api._lua_setglobal(L, runtime.cstring(name));
        }
        preludeFailure = runtime.load(L, encoder.encode(PRELUDE), HOST_CHUNK);
        if (preludeFailure !== null) return;
        api._lua_createtable(L, 0, host.length + 1);
        for (const [name, pointer] of host) {
          api._lua_pushcclosure(L, pointer, 0);
          api._lua_setfield(L, -2, runtime.cstring(name));
        }
        api._lua_pushlightuserdata(L, 0);
        api._lua_setfield(L, -2, runtime.cstring('null'));
        api._lua_callk(L, 1, 1, 0, 0);
        api._lua_getfield(L, -1, runtime.cstring('array_mt'));
        arrayMetatableRef = api._luaL_ref(L, LUA_REGISTRYINDEX);
        this.internalsRef = api._luaL_ref(L, LUA_REGISTRYINDEX);
      },
      { instructionBudget: 1_000_000, deadlineMs: 5_000 },
    );
    if (preludeFailure !== null) throw preludeFailure;
    this.bridge = new JsonBridge(runtime, arrayMetatableRef);
    runtime.setMemoryLimit(Math.max(this.options.limits.memoryBytes, runtime.memoryUsed() + 64 * 1024));
  }

  private hostNow(L: number): number {
    const clock = this.options.clock ?? Date.now;
    this.runtime.pushString(L, new Date(clock()).toISOString());
    return 1;
  }

  private hostParseTime(L: number): number {
    const api = this.runtime.api;
    checkType(this.runtime, L, 1, 'parse_time', LUA_TSTRING);
    const parsed = parseIsoTime(this.runtime.readString(L, 1));
    if (typeof parsed === 'number') {
      api._lua_pushinteger(L, BigInt(parsed));
      return 1;
    }
    api._lua_pushnil(L);
    this.runtime.pushString(L, parsed.error);
    return 2;
  }

  private hostFormatTime(L: number): number {
    const api = this.runtime.api;
    checkType(this.runtime, L, 1, 'format_time', LUA_TNUMBER);
    const formatted = formatIsoTime(api._lua_tonumberx(L, 1, 0));
    if (typeof formatted === 'string') {
      this.runtime.pushString(L, formatted);
      return 1;
    }
    api._lua_pushnil(L);
    this.runtime.pushString(L, formatted.error);
    return 2;
  }

  private hostUrlEncode(L: number): number {
    checkType(this.runtime, L, 1, 'url_encode', LUA_TSTRING, LUA_TNUMBER);
    this.runtime.pushString(L, urlEncodeBytes(this.runtime.readBytes(L, 1)));
    return 1;
  }

  private hostLog(L: number): number {
    checkType(this.runtime, L, 1, 'log', LUA_TSTRING);
    checkType(this.runtime, L, 2, 'log', LUA_TSTRING, LUA_TNUMBER);
    const level = this.runtime.readString(L, 1);
    if (!(LOG_LEVELS as readonly string[]).includes(level)) {
      throw new LuaArgumentError(`bad argument #1 to 'log' (one of ${LOG_LEVELS.join(', ')} expected)`);
    }
    if (this.logLines >= MAX_LOG_LINES_PER_CALL) {
      this.logDropped++;
      return 0;
    }
    this.logLines++;
    let message = this.runtime.readString(L, 2);
    if (message.length > MAX_LOG_MESSAGE) message = `${message.slice(0, MAX_LOG_MESSAGE)}…`;
    this.emitLog(level as ScriptLogLevel, message);
    return 0;
  }

  private hostJsonEncode(L: number): number {
    let value: JsonValue | undefined;
    try {
      value = this.json().read(L, 1);
    } catch (err) {
      if (err instanceof ConversionError) {
        const where = err.where === '' ? '' : ` at ${err.where}`;
        throw new LuaArgumentError(`bad argument #1 to 'json_encode' (${err.message}${where})`);
      }
      throw err;
    }
    this.runtime.pushString(L, JSON.stringify(value ?? null));
    return 1;
  }

  private hostJsonDecode(L: number): number {
    const api = this.runtime.api;
    checkType(this.runtime, L, 1, 'json_decode', LUA_TSTRING);
    let value: JsonValue;
    try {
      value = JSON.parse(this.runtime.readString(L, 1)) as JsonValue;
    } catch (err) {
      api._lua_pushnil(L);
      this.runtime.pushString(L, errorMessage(err));
      return 2;
    }
    this.json().push(L, value, { nullAsNil: false });
    return 1;
  }

  private emitLog(level: ScriptLogLevel, message: string): void {
    try {
      this.options.log?.(level, message);
    } catch {
      // A failing log callback must not become the script's failure.
    }
  }
}

function checkType(runtime: LuaRuntime, L: number, arg: number, fn: string, ...types: number[]): void {
  const type = runtime.api._lua_type(L, arg);
  if (types.includes(type)) return;
  const expected = types.map((t) => LUA_TYPE_NAMES[t]).join(' or ');
  throw new LuaArgumentError(
    `bad argument #${arg} to '${fn}' (${expected} expected, got ${runtime.typeName(L, arg)})`,
  );
}

function resultError(hook: string, index: number, err: unknown): Error {
  if (!(err instanceof ConversionError)) return err instanceof Error ? err : new Error(String(err));
  const where = err.where === '' ? '' : ` at ${err.where}`;
  return new Error(`result #${index + 1} of ${hook} is not JSON${where}: ${err.message}`);
}

function eventError(index: number, err: unknown): Error {
  if (!(err instanceof ConversionError)) return err instanceof Error ? err : new Error(String(err));
  const where = err.where === '' ? '' : ` at ${err.where}`;
  return new Error(
    `transform returned an event that is not JSON (event ${index + 1}${where}): ${err.message}`,
  );
}

function formatBytes(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}
