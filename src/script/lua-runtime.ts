import { LuaFactory, LuaGlobal } from 'wasmoon';

import { errorMessage } from '../core/errors.js';
import {
  isLongjmp,
  LUA_DEBUG_CURRENTLINE,
  LUA_DEBUG_LINEDEFINED,
  LUA_DEBUG_SHORT_SRC,
  LUA_DEBUG_SIZE,
  LUA_ERRMEM,
  LUA_IDSIZE,
  LUA_MASKCOUNT,
  LUA_OK,
  LUA_REGISTRYINDEX,
  LUA_TNUMBER,
  LUA_TSTRING,
  LUA_TYPE_NAMES,
  type LuaModule,
} from './lua-api.js';

/** Chunk name of the host's own Lua code, so its frames are never blamed for a script's error. */
export const HOST_CHUNK = '[oktail]';

/**
 * Instructions between two calls of the count hook. Smaller steps make the budget and the deadline more
 * precise but cost a JS call each; at 1000 the hook adds about 1 % to a busy loop.
 */
export const HOOK_STEP = 1000;

const MAX_CACHED_CSTRINGS = 4096;
const SCRATCH_KEEP_BYTES = 1 << 20;
const SMALL_STRING = 64;

export interface CallLimits {
  /** Lua VM instructions one call may execute (counted in steps of HOOK_STEP). */
  instructionBudget: number;
  /** Wall-clock milliseconds one call may take. */
  deadlineMs: number;
}

export type FailureKind = 'error' | 'syntax' | 'instructions' | 'deadline' | 'memory' | 'runtime';

/** Why a protected call failed, with the script line when one is known. */
export class LuaFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly line: number | null,
  ) {
    super(message);
    this.name = 'LuaFailure';
  }
}

/** A C function's body: returns how many values it left on the stack for Lua. */
export type CFunctionBody = (L: number) => number;

/** Thrown by a host function's body for a caller mistake; reported with the caller's script position. */
export class LuaArgumentError extends Error {}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

/**
 * One Lua 5.4 state in its own WebAssembly instance, driven through the raw C API.
 *
 * Every piece of work that may allocate or run Lua code happens inside `run`, as the body of a C function
 * called by `lua_pcall` on a dedicated worker thread: an allocation failure or a script error then unwinds
 * to that pcall instead of reaching Lua's panic handler (which would abort the WebAssembly instance), and
 * the worker's stack is emptied after every call so nothing accumulates across calls.
 */
export class LuaRuntime {
  private readonly main: number;
  private readonly worker: number;
  private readonly functionPointers: number[] = [];
  private readonly cstrings = new Map<string, number>();
  private readonly hookPointer: number;
  private readonly trampolinePointer: number;
  private readonly handlerPointer: number;
  private readonly lengthPointer: number;
  private readonly debugPointer: number;
  private readonly infoSourceLine: number;
  private scratchPointer = 0;
  private scratchSize = 0;

  private body: CFunctionBody | null = null;
  private instructionsUsed = 0;
  private instructionBudget = Infinity;
  private deadline = Infinity;
  private exceeded: 'instructions' | 'deadline' | null = null;
  private errorLine: number | null = null;
  private broken = false;
  private closed = false;

  private constructor(
    private readonly global: LuaGlobal,
    readonly api: LuaModule,
    /** `short_src` of the script's chunk: frames from it are the ones an error message points at. */
    private readonly scriptSource: string,
  ) {
    this.main = global.address;
    this.lengthPointer = api._malloc(8);
    this.debugPointer = api._malloc(LUA_DEBUG_SIZE);
    this.infoSourceLine = this.cstring('Sl');
    this.ensureScratch(4096);

    this.hookPointer = this.register((L: number) => this.onCount(L), 'vii');
    this.trampolinePointer = this.register((L: number) => this.trampoline(L), 'ii');
    this.handlerPointer = this.register((L: number) => this.messageHandler(L), 'ii');

    this.worker = api._lua_newthread(this.main);
    if (this.worker === 0) throw new Error('Lua could not create its worker thread');
    // Anchored in the registry so the collector keeps it; the main stack is then left empty for good.
    api._luaL_ref(this.main, LUA_REGISTRYINDEX);
    // Registered once for the engine's life; threads the script creates inherit it from the worker.
    api._lua_sethook(this.worker, this.hookPointer, LUA_MASKCOUNT, HOOK_STEP);
  }

  /** A fresh WebAssembly instance per runtime, so a script's heap (which never shrinks) dies with it. */
  static async create(scriptSource: string): Promise<LuaRuntime> {
    const wasm = await new LuaFactory().getLuaModule();
    const global = new LuaGlobal(wasm, true);
    return new LuaRuntime(global, wasm.module as unknown as LuaModule, scriptSource);
  }

  get isBroken(): boolean {
    return this.broken;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Caps the memory Lua may allocate; past it allocations fail with a catchable "not enough memory". */
  setMemoryLimit(bytes: number | undefined): void {
    this.global.setMemoryMax(bytes);
  }

  memoryUsed(): number {
    return this.global.getMemoryUsed();
  }

  /** Size of the WebAssembly linear memory: what the process actually holds for this runtime. */
  heapBytes(): number {
    return this.api.HEAPU8.length;
  }

  /** A NUL-terminated copy of `text` in the module's memory, kept for the runtime's life; 0 if not cacheable. */
  cstring(text: string): number {
    const cached = this.cstrings.get(text);
    if (cached !== undefined) return cached;
    if (this.cstrings.size >= MAX_CACHED_CSTRINGS || text.includes('\0')) return 0;
    const bytes = encoder.encode(text);
    const pointer = this.api._malloc(bytes.length + 1);
    const heap = this.api.HEAPU8;
    heap.set(bytes, pointer);
    heap[pointer + bytes.length] = 0;
    this.cstrings.set(text, pointer);
    return pointer;
  }

  /** Pushes a JS string as a UTF-8 Lua string. May raise a Lua memory error: call inside `run`. */
  pushString(L: number, text: string): void {
    const api = this.api;
    const length = text.length;
    if (length < SMALL_STRING) {
      const heap = api.HEAPU8;
      const pointer = this.scratchPointer;
      let i = 0;
      for (; i < length; i++) {
        const code = text.charCodeAt(i);
        if (code >= 0x80) break;
        heap[pointer + i] = code;
      }
      if (i === length) {
        api._lua_pushlstring(L, pointer, length);
        return;
      }
    }
    const room = length * 3;
    this.ensureScratch(room);
    const written = encoder.encodeInto(
      text,
      api.HEAPU8.subarray(this.scratchPointer, this.scratchPointer + room),
    ).written;
    api._lua_pushlstring(L, this.scratchPointer, written);
  }

  /** Pushes raw bytes as a Lua string. */
  pushBytes(L: number, bytes: Uint8Array): void {
    this.ensureScratch(bytes.length);
    this.api.HEAPU8.set(bytes, this.scratchPointer);
    this.api._lua_pushlstring(L, this.scratchPointer, bytes.length);
  }

  /** The string at `index` decoded as UTF-8 (invalid sequences become U+FFFD). Numbers are converted in place. */
  readString(L: number, index: number): string {
    const bytes = this.readBytes(L, index);
    const length = bytes.length;
    if (length < SMALL_STRING) {
      let text = '';
      for (let i = 0; i < length; i++) {
        const byte = bytes[i]!;
        if (byte >= 0x80) return decoder.decode(bytes);
        text += String.fromCharCode(byte);
      }
      return text;
    }
    return decoder.decode(bytes);
  }

  /** A view of the string's bytes inside the module's memory; valid until Lua next allocates. */
  readBytes(L: number, index: number): Uint8Array {
    const pointer = this.api._lua_tolstring(L, index, this.lengthPointer);
    const length = this.api.HEAPU32[this.lengthPointer >> 2]!;
    return this.api.HEAPU8.subarray(pointer, pointer + length);
  }

  typeName(L: number, index: number): string {
    return LUA_TYPE_NAMES[this.api._lua_type(L, index)] ?? 'unknown';
  }

  /**
   * Registers a JS function as a Lua C function for the runtime's life. The body must not let a JS exception
   * escape into Lua (it would unwind through C frames Lua believes are still running): anything it throws
   * becomes a Lua error, with the caller's position for a LuaArgumentError.
   */
  cfunction(body: CFunctionBody): number {
    return this.register((L: number): number => {
      let failure: unknown;
      try {
        return body(L);
      } catch (err) {
        if (isLongjmp(err)) throw err;
        failure = err;
      }
      return this.raise(L, errorMessage(failure), true);
    }, 'ii');
  }

  /** Raises a Lua error with `message` (prefixed with the calling script position when `where`). */
  raise(L: number, message: string, where = false): number {
    if (where) {
      this.api._luaL_where(L, 1);
      this.pushString(L, message);
      this.api._lua_concat(L, 2);
    } else {
      this.pushString(L, message);
    }
    return this.api._lua_error(L);
  }

  /**
   * Runs `body` inside `lua_pcall` on the worker thread under the given limits. The body may use the Lua API
   * freely (allocate, call Lua functions); results travel out through the caller's closures. Throws a
   * LuaFailure when the body or the Lua code it calls fails; the runtime stays usable afterwards.
   */
  run(body: (L: number) => void, limits: CallLimits): void {
    if (this.closed) throw new LuaFailure('runtime', 'the script has been closed', null);
    if (this.broken)
      throw new LuaFailure('runtime', 'the Lua runtime failed earlier and must be reloaded', null);
    if (this.body !== null) throw new LuaFailure('runtime', 'a Lua call is already running', null);
    const api = this.api;
    const worker = this.worker;
    api._lua_settop(worker, 0);
    api._lua_sethook(worker, this.hookPointer, LUA_MASKCOUNT, HOOK_STEP);
    api._lua_pushcclosure(worker, this.handlerPointer, 0);
    api._lua_pushcclosure(worker, this.trampolinePointer, 0);
    this.body = (L) => {
      body(L);
      return 0;
    };
    this.instructionsUsed = 0;
    this.instructionBudget = limits.instructionBudget;
    this.deadline = performance.now() + limits.deadlineMs;
    this.exceeded = null;
    this.errorLine = null;
    let status: number;
    try {
      status = api._lua_pcallk(worker, 0, 0, 1, 0, 0);
    } catch (err) {
      // Only a bug in a host function gets here; the C stack Lua tracks no longer matches reality.
      this.broken = true;
      throw new LuaFailure('runtime', `the Lua runtime failed: ${errorMessage(err)}`, null);
    } finally {
      this.body = null;
      this.instructionBudget = Infinity;
      this.deadline = Infinity;
      this.shrinkScratch();
    }
    if (status === LUA_OK) {
      api._lua_settop(worker, 0);
      return;
    }
    const text = this.errorText(worker, -1);
    api._lua_settop(worker, 0);
    const exceeded = this.exceeded;
    this.exceeded = null;
    if (exceeded !== null) throw new LuaFailure(exceeded, text, this.errorLine);
    if (status === LUA_ERRMEM) throw new LuaFailure('memory', text, null);
    const parsed = this.splitPosition(text);
    throw new LuaFailure('error', parsed.message, parsed.line ?? this.errorLine);
  }

  /**
   * Compiles a text chunk and leaves the function on the stack; a syntax error becomes a LuaFailure after
   * the surrounding `run` returns. Binary chunks are refused by mode "t".
   */
  load(L: number, source: Uint8Array, chunkName: string): LuaFailure | null {
    const api = this.api;
    this.ensureScratch(source.length);
    api.HEAPU8.set(source, this.scratchPointer);
    const status = api._luaL_loadbufferx(
      L,
      this.scratchPointer,
      source.length,
      this.cstring(`=${chunkName}`),
      this.cstring('t'),
    );
    if (status === LUA_OK) return null;
    const text = this.errorText(L, -1);
    api._lua_settop(L, -2);
    if (status === LUA_ERRMEM) return new LuaFailure('memory', text, null);
    const parsed = this.splitPosition(text);
    return new LuaFailure('syntax', parsed.message, parsed.line);
  }

  /** Line where the Lua function at `index` is defined, or null for a C function. */
  functionLine(L: number, index: number): number | null {
    const api = this.api;
    api._lua_pushvalue(L, index);
    if (api._lua_getinfo(L, this.cstring('>S'), this.debugPointer) === 0) return null;
    const line = api.HEAP32[(this.debugPointer + LUA_DEBUG_LINEDEFINED) >> 2]!;
    return line > 0 ? line : null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const api = this.api;
    this.global.close();
    for (const pointer of this.functionPointers) api.removeFunction(pointer);
    for (const pointer of this.cstrings.values()) api._free(pointer);
    api._free(this.lengthPointer);
    api._free(this.debugPointer);
    if (this.scratchPointer !== 0) api._free(this.scratchPointer);
    this.functionPointers.length = 0;
    this.cstrings.clear();
  }

  private register(fn: (...args: never[]) => unknown, signature: string): number {
    const pointer = this.api.addFunction(fn, signature);
    this.functionPointers.push(pointer);
    return pointer;
  }

  private trampoline(L: number): number {
    const body = this.body;
    if (body === null) return 0;
    let failure: unknown;
    try {
      return body(L);
    } catch (err) {
      if (isLongjmp(err)) throw err;
      failure = err;
    }
    return this.raise(L, errorMessage(failure));
  }

  /**
   * The count hook. Once a limit is hit, the hook fires on every instruction and fails each time, so a
   * script that catches the error with pcall is stopped again at its very next instruction.
   */
  private onCount(L: number): void {
    const api = this.api;
    if (this.exceeded === null) {
      this.instructionsUsed += HOOK_STEP;
      if (this.instructionsUsed > this.instructionBudget) this.exceeded = 'instructions';
      else if (performance.now() > this.deadline) this.exceeded = 'deadline';
      else {
        // A coroutine created while a limit was being enforced still fires every instruction: undo that.
        if (api._lua_gethookcount(L) !== HOOK_STEP)
          api._lua_sethook(L, this.hookPointer, LUA_MASKCOUNT, HOOK_STEP);
        return;
      }
    }
    api._lua_sethook(L, this.hookPointer, LUA_MASKCOUNT, 1);
    this.raise(L, this.exceeded === 'instructions' ? 'instruction budget exceeded' : 'deadline exceeded');
  }

  /** Message handler of the host's pcall: notes the script line an error comes from, leaves the error as is. */
  private messageHandler(L: number): number {
    try {
      this.errorLine = this.scriptLine(L);
    } catch (err) {
      if (isLongjmp(err)) throw err;
    }
    return 1;
  }

  private scriptLine(L: number): number | null {
    const api = this.api;
    let fallback: number | null = null;
    for (let level = 1; level < 64; level++) {
      if (api._lua_getstack(L, level, this.debugPointer) === 0) break;
      api._lua_getinfo(L, this.infoSourceLine, this.debugPointer);
      const line = api.HEAP32[(this.debugPointer + LUA_DEBUG_CURRENTLINE) >> 2]!;
      if (line <= 0) continue;
      const source = this.cstringAt(this.debugPointer + LUA_DEBUG_SHORT_SRC, LUA_IDSIZE);
      if (source === this.scriptSource) return line;
      if (fallback === null && source !== HOST_CHUNK) fallback = line;
    }
    return fallback;
  }

  /** An error value as text, without running any metamethod (no __tostring: the call already ended). */
  private errorText(L: number, index: number): string {
    const type = this.api._lua_type(L, index);
    if (type === LUA_TSTRING) return this.readString(L, index);
    if (type === LUA_TNUMBER) return String(this.api._lua_tonumberx(L, index, 0));
    return `(error object is a ${this.typeName(L, index)} value)`;
  }

  /** Splits "chunk:12: message" into line and message when the chunk is the script's or the host's. */
  private splitPosition(text: string): { line: number | null; message: string } {
    const match = /^([^\n]*?):(\d+): ([\s\S]*)$/.exec(text);
    if (match !== null && (match[1] === this.scriptSource || match[1] === HOST_CHUNK)) {
      return { line: match[1] === this.scriptSource ? Number(match[2]) : null, message: match[3]! };
    }
    return { line: null, message: text };
  }

  private cstringAt(pointer: number, max: number): string {
    const heap = this.api.HEAPU8;
    let end = pointer;
    while (end < pointer + max && heap[end] !== 0) end++;
    return decoder.decode(heap.subarray(pointer, end));
  }

  private ensureScratch(size: number): void {
    if (size <= this.scratchSize) return;
    const next = Math.max(size, this.scratchSize * 2, 4096);
    const pointer = this.api._malloc(next);
    if (pointer === 0) throw new Error(`cannot allocate ${next} bytes for a string`);
    if (this.scratchPointer !== 0) this.api._free(this.scratchPointer);
    this.scratchPointer = pointer;
    this.scratchSize = next;
  }

  private shrinkScratch(): void {
    if (this.scratchSize <= SCRATCH_KEEP_BYTES) return;
    const pointer = this.api._malloc(4096);
    if (pointer === 0) return;
    this.api._free(this.scratchPointer);
    this.scratchPointer = pointer;
    this.scratchSize = 4096;
  }
}
