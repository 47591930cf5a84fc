import { errorMessage } from '../core/errors.js';
import { EventEdit, type RawEvents, type TransformedEvents } from '../core/collection-logic.js';
import type { JsonObject, JsonValue } from '../core/json.js';
import {
  formatIsoTime,
  SCRIPT_LOG_LEVELS,
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
import { ConversionError, JsonBridge, setOwn } from './lua-json.js';
import { EventFields, PageKeys } from './event-fields.js';
import { decodeTransformed, encodeEvents, jsonEqual } from './raw-events.js';
import { LuaFailure, ScriptFailure, transformLimits, type ScriptLimits, type ScriptLog } from './failure.js';
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

-- Events reach transform as empty tables whose fields the host decodes on first access, from the page's bytes:
-- an event nobody looks into costs almost nothing, and one that comes back unchanged keeps its bytes. Each
-- proxy's state (fields read or written, fields removed) lives here, out of the scripts' reach.
local live = {}
local event_field, event_fields = host.event_field, host.event_fields
local function state_of(p)
  local st = live[p]
  if st == nil then error("an event can only be used during the transform call it was given to", 3) end
  return st
end
local event_mt = { __metatable = "event" }
event_mt.__index = function(p, k)
  local st = state_of(p)
  local fields = st.fields
  if fields ~= nil then
    local v = fields[k]
    if v ~= nil or st.all then return v end
  end
  local removed = st.removed
  if (removed ~= nil and removed[k]) or type(k) ~= "string" then return nil end
  local v = event_field(st.i, k)
  if v ~= nil then
    if fields == nil then fields = {}; st.fields = fields end
    fields[k] = v
    -- A table handed out may be changed in place: the host compares it with the original afterwards.
    if type(v) == "table" then st.tables = true end
  end
  return v
end
event_mt.__newindex = function(p, k, v)
  local st = state_of(p)
  local fields = st.fields
  if fields == nil then fields = {}; st.fields = fields end
  fields[k] = v
  st.written = true
  local removed = st.removed
  if v == nil then
    if removed == nil then removed = {}; st.removed = removed end
    removed[k] = true
  elseif removed ~= nil then
    removed[k] = nil
  end
end
event_mt.__pairs = function(p)
  local st = state_of(p)
  if not st.all then
    local fields, removed = st.fields or {}, st.removed
    for k, v in next, event_fields(st.i) do
      if fields[k] == nil and not (removed ~= nil and removed[k]) then fields[k] = v end
    end
    st.fields, st.all, st.tables = fields, true, true
  end
  return next, st.fields, nil
end

-- One call per page: the loop stays inside Lua instead of crossing from JS once per event. Returns, per
-- event, false (dropped), true (the event itself, untouched) or the table returned, and for a returned
-- event the state the host reads its changes from.
local function transform_page(n)
  local fn = transform
  if type(fn) ~= "function" then error("transform is not a function", 0) end
  local out, states = {}, {}
  for i = 1, n do
    local p = raw_setmetatable({}, event_mt)
    local st = { i = i }
    live[p] = st
    local result = fn(p)
    if result == nil or result == false then
      out[i] = false
    else
      local rst = type(result) == "table" and live[result] or nil
      if rst == st and not st.written and not st.tables and next(p) == nil then
        out[i] = true
      else
        out[i] = result
        states[i] = rst
      end
    end
  end
  return out, states
end

local function end_page()
  for p in next, live do live[p] = nil end
end

return {
  array_mt = array_mt, event_mt = event_mt, live = live, transform_page = transform_page, end_page = end_page,
  collect = function() raw_collect("collect") end,
}
`;

const encoder = new TextEncoder();

/**
 * A script loaded into its own Lua runtime, with the host API installed and the sandbox applied. Converts
 * hook arguments and results between JSON and Lua and reports failures as ScriptFailure.
 */
export class ScriptSandbox {
  private bridge: JsonBridge | null = null;
  private liveRef = 0;
  private page: {
    body: Buffer;
    offsets: Uint32Array;
    count: number;
    escapedKeys: Uint8Array | undefined;
    keys: PageKeys;
    parsed: (JsonObject | undefined)[];
    fields: (EventFields | undefined)[];
  } | null = null;
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
    const raw = encodeEvents(events);
    return decodeTransformed(raw, this.transformPage(raw));
  }

  /**
   * Runs the script's `transform` over a page of raw events in one call into Lua. Each event enters Lua as a
   * proxy table whose fields are decoded from the page's bytes when first read; afterwards only what the
   * script read or wrote is compared with the original, so an unchanged event keeps its bytes and an event
   * that only gained fields keeps them too. Keys in `omitKeys` (the tags, which the host adds and which
   * override the event's) are left out of what comes back.
   */
  transformPage(raw: RawEvents, omitKeys: readonly string[] = []): TransformedEvents {
    const edits = new Uint8Array(raw.count);
    const text: (string | undefined)[] = new Array<string | undefined>(raw.count);
    const body = Buffer.isBuffer(raw.body)
      ? raw.body
      : Buffer.from(raw.body.buffer, raw.body.byteOffset, raw.body.byteLength);
    this.page = {
      body,
      offsets: raw.offsets,
      count: raw.count,
      escapedKeys: raw.escapedKeys,
      keys: new PageKeys(
        body,
        raw.count > 0 ? raw.offsets[0]! : 0,
        raw.count > 0 ? raw.offsets[2 * raw.count - 1]! : 0,
      ),
      parsed: new Array<JsonObject | undefined>(raw.count),
      fields: new Array<EventFields | undefined>(raw.count),
    };
    const omit = new Set(omitKeys);
    try {
      this.run(
        'transform',
        (L) => {
          const api = this.runtime.api;
          const json = this.json();
          api._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(this.internalsRef));
          const internals = api._lua_gettop(L);
          api._lua_getfield(L, internals, this.runtime.cstring('transform_page'));
          api._lua_pushinteger(L, BigInt(raw.count));
          api._lua_callk(L, 1, 2, 0, 0);
          const out = api._lua_gettop(L) - 1;
          const states = out + 1;
          for (let i = 0; i < raw.count; i++) {
            const type = api._lua_rawgeti(L, out, BigInt(i + 1));
            if (type === LUA_TBOOLEAN) {
              edits[i] = api._lua_toboolean(L, -1) === 0 ? EventEdit.DROPPED : EventEdit.UNCHANGED;
            } else if (type === LUA_TTABLE) {
              try {
                if (api._lua_rawgeti(L, states, BigInt(i + 1)) === LUA_TTABLE) {
                  const delta = this.readDelta(L, api._lua_gettop(L), api._lua_gettop(L) - 1, i);
                  if (delta.replaced === null) {
                    const added = delta.added.filter(([k]) => !omit.has(k));
                    edits[i] = added.length === 0 ? EventEdit.UNCHANGED : EventEdit.ADDED;
                    if (added.length > 0) text[i] = members(added);
                  } else {
                    edits[i] = EventEdit.REPLACED;
                    text[i] = stringifyWithout(delta.replaced, omit);
                  }
                } else {
                  const event = json.read(L, -2);
                  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
                    throw new Error(
                      `transform returned an array for event ${i + 1}; it must return an event table or nil`,
                    );
                  }
                  edits[i] = EventEdit.REPLACED;
                  text[i] = stringifyWithout(event, omit);
                }
              } catch (err) {
                throw eventError(i, err);
              }
              api._lua_settop(L, -2);
            } else {
              const got = LUA_TYPE_NAMES[type] ?? 'unknown';
              throw new Error(
                `transform returned a ${got} for event ${i + 1}; it must return an event table or nil`,
              );
            }
            api._lua_settop(L, -2);
          }
          api._lua_getfield(L, internals, this.runtime.cstring('end_page'));
          api._lua_callk(L, 0, 0, 0, 0);
        },
        true,
        transformLimits(this.options.limits, raw.count),
      );
    } finally {
      this.page = null;
    }
    return { edits, text };
  }

  private currentPage(i: number): NonNullable<ScriptSandbox['page']> {
    const page = this.page;
    if (page === null || !Number.isInteger(i) || i < 0 || i >= page.count) {
      throw new Error('an event can only be used during the transform call it was given to');
    }
    return page;
  }

  /** Where the top-level fields of event i sit, found on first use. */
  private eventFields(i: number): EventFields {
    const page = this.currentPage(i);
    let fields = page.fields[i];
    if (fields === undefined) {
      const escaped = page.escapedKeys?.[i];
      fields = new EventFields(page.body, page.offsets[2 * i]!, page.offsets[2 * i + 1]!, {
        page: page.keys,
        ...(escaped === undefined ? {} : { escapedKeys: escaped === 1 }),
      });
      page.fields[i] = fields;
    }
    return fields;
  }

  /** One top-level field of event i, parsed from its bytes alone; undefined when absent. */
  private fieldValue(i: number, key: string): JsonValue | undefined {
    return this.eventFields(i).value(key) as JsonValue | undefined;
  }

  /** Event i of the page being transformed, parsed once, on first use. */
  private parsedEvent(i: number): JsonObject {
    const page = this.currentPage(i);
    let event = page.parsed[i];
    if (event === undefined) {
      event = JSON.parse(
        page.body.toString('utf8', page.offsets[2 * i], page.offsets[2 * i + 1]),
      ) as JsonObject;
      page.parsed[i] = event;
    }
    return event;
  }

  /**
   * What became of an event proxy (the state at `stateIndex`, the proxy at `proxyIndex`), returned for event
   * `i`: the fields it gained, or the whole new event when an original field changed or went away (or the
   * proxy is another event's).
   */
  private readDelta(
    L: number,
    stateIndex: number,
    proxyIndex: number,
    i: number,
  ): { added: [string, JsonValue][]; replaced: JsonObject | null } {
    const api = this.runtime.api;
    const json = this.json();
    api._lua_getfield(L, stateIndex, this.runtime.cstring('i'));
    const j = Number(api._lua_tonumberx(L, -1, 0)) - 1;
    api._lua_settop(L, -2);
    const fields = this.eventFields(j);
    const written = new Map<string, JsonValue>();
    const removed = new Set<string>();
    const readPairs = (index: number, onPair: (key: string) => void): void => {
      const top = api._lua_gettop(L);
      api._lua_pushnil(L);
      while (api._lua_next(L, index) !== 0) {
        const keyType = api._lua_type(L, -2);
        let key: string;
        if (keyType === LUA_TSTRING) key = this.runtime.readString(L, -2);
        else if (keyType === LUA_TNUMBER) key = String(api._lua_tonumberx(L, -2, 0));
        else throw new ConversionError(`a ${this.runtime.typeName(L, -2)} key cannot be a JSON object key`);
        onPair(key);
        api._lua_settop(L, top + 1);
      }
    };
    const readValue = (key: string): void => {
      let value: JsonValue | undefined;
      try {
        value = json.read(L, -1);
      } catch (err) {
        if (err instanceof ConversionError) err.path.unshift(key);
        throw err;
      }
      written.set(key, value ?? null);
    };
    if (api._lua_getfield(L, stateIndex, this.runtime.cstring('fields')) === LUA_TTABLE) {
      readPairs(api._lua_gettop(L), readValue);
    }
    api._lua_settop(L, -2);
    if (api._lua_getfield(L, stateIndex, this.runtime.cstring('removed')) === LUA_TTABLE) {
      readPairs(api._lua_gettop(L), (key) => removed.add(key));
    }
    api._lua_settop(L, -2);
    // Fields set with rawset land in the proxy itself.
    readPairs(proxyIndex, readValue);

    let changed = j !== i;
    const added: [string, JsonValue][] = [];
    for (const [key, value] of written) {
      if (!fields.has(key)) added.push([key, value]);
      else if (!changed && !jsonEqual(this.fieldValue(j, key), value)) changed = true;
    }
    for (const key of removed) if (!written.has(key) && fields.has(key)) changed = true;
    if (!changed) return { added, replaced: null };
    const replaced: JsonObject = {};
    for (const key of fields.keys()) {
      if (removed.has(key) && !written.has(key)) continue;
      setOwn(replaced, key, written.has(key) ? written.get(key)! : this.fieldValue(j, key)!);
    }
    for (const [key, value] of added) setOwn(replaced, key, value);
    return { added, replaced };
  }

  /** An event proxy met inside another value (`json.encode(event)`, `return { e = event }`), as JSON. */
  private readEventProxy(L: number, index: number): JsonObject {
    const api = this.runtime.api;
    api._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(this.liveRef));
    api._lua_pushvalue(L, index);
    if (api._lua_rawget(L, -2) !== LUA_TTABLE) {
      throw new ConversionError('an event can only be used during the transform call it was given to');
    }
    const state = api._lua_gettop(L);
    api._lua_getfield(L, state, this.runtime.cstring('i'));
    const i = Number(api._lua_tonumberx(L, -1, 0)) - 1;
    api._lua_settop(L, -2);
    const delta = this.readDelta(L, state, index, i);
    api._lua_settop(L, -3);
    if (delta.replaced !== null) return delta.replaced;
    const event = { ...this.parsedEvent(i) };
    for (const [key, value] of delta.added) setOwn(event, key, value);
    return event;
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
      ['event_field', runtime.cfunction((L) => this.hostEventField(L))],
      ['event_fields', runtime.cfunction((L) => this.hostEventFields(L))],
    ];
    let preludeFailure = null as LuaFailure | null;
    let arrayMetatableRef = 0;
    let eventMetatableRef = 0;
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
        api._lua_getfield(L, -1, runtime.cstring('event_mt'));
        eventMetatableRef = api._luaL_ref(L, LUA_REGISTRYINDEX);
        api._lua_getfield(L, -1, runtime.cstring('live'));
        this.liveRef = api._luaL_ref(L, LUA_REGISTRYINDEX);
        this.internalsRef = api._luaL_ref(L, LUA_REGISTRYINDEX);
      },
      { instructionBudget: 1_000_000, deadlineMs: 5_000 },
    );
    if (preludeFailure !== null) throw preludeFailure;
    this.bridge = new JsonBridge(runtime, arrayMetatableRef, {
      metatableRef: eventMetatableRef,
      read: (L, index) => this.readEventProxy(L, index),
    });
    runtime.setMemoryLimit(Math.max(this.options.limits.memoryBytes, runtime.memoryUsed() + 64 * 1024));
  }

  /** `event_field(i, key)`: a field of event i of the page being transformed, or nothing. */
  private hostEventField(L: number): number {
    const api = this.runtime.api;
    const value = this.fieldValue(Number(api._lua_tonumberx(L, 1, 0)) - 1, this.runtime.readString(L, 2));
    if (value === undefined) return 0;
    this.json().push(L, value, { nullAsNil: false });
    return 1;
  }

  /** `event_fields(i)`: every field of event i, for `pairs`. */
  private hostEventFields(L: number): number {
    const api = this.runtime.api;
    const event = this.parsedEvent(Number(api._lua_tonumberx(L, 1, 0)) - 1);
    this.json().push(L, event, { nullAsNil: false });
    return 1;
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
    if (!(SCRIPT_LOG_LEVELS as readonly string[]).includes(level)) {
      throw new LuaArgumentError(
        `bad argument #1 to 'log' (one of ${SCRIPT_LOG_LEVELS.join(', ')} expected)`,
      );
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

/** `"k":v,...` */
function members(pairs: readonly [string, JsonValue][]): string {
  return pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',');
}

function stringifyWithout(event: JsonObject, omit: ReadonlySet<string>): string {
  if (omit.size === 0 || !Object.keys(event).some((k) => omit.has(k))) return JSON.stringify(event);
  const copy = { ...event };
  for (const k of omit) delete copy[k];
  return JSON.stringify(copy);
}

function formatBytes(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}
