import { LuaFactory } from 'wasmoon';

import { errorMessage } from '../core/errors.js';
import { LuaFailure } from './failure.js';
import {
  isLongjmp,
  LUA_DEBUG_CURRENTLINE,
  LUA_DEBUG_LINEDEFINED,
  LUA_DEBUG_SHORT_SRC,
  LUA_DEBUG_SIZE,
  LUA_ERRMEM,
  LUA_IDSIZE,
  LUA_MASKCOUNT,
  LUA_MODULE_FUNCTIONS,
  LUA_OK,
  LUA_REGISTRYINDEX,
  LUA_TNUMBER,
  LUA_TSTRING,
  LUA_TYPE_NAMES,
  type LuaModule,
} from './lua-api.js';

export { LuaFailure, type FailureKind } from './failure.js';

/** Chunk name of the host's own Lua code, so its frames are never blamed for a script's error. */
export const HOST_CHUNK = '[oktail]';

/**
 * Instructions between two calls of the count hook. Smaller steps make the budget and the deadline more
 * precise but cost a JS call each; at 1000 the cost is lost in the noise of a 5-million-iteration loop.
 */
export const HOOK_STEP = 1000;

const MAX_CACHED_CSTRINGS = 4096;
const SCRATCH_KEEP_BYTES = 1 << 20;
/** Strings up to this many bytes take the fast paths (and the decode cache). */
const SHORT_STRING = 32;
const MAX_SHORT_STRINGS = 8192;

export interface CallLimits {
  /** Lua VM instructions one call may execute (counted in steps of HOOK_STEP). */
  instructionBudget: number;
  /** Wall-clock milliseconds one call may take. */
  deadlineMs: number;
}

/** A C function's body: returns how many values it left on the stack for Lua. */
export type CFunctionBody = (L: number) => number;

/** Thrown by a host function's body for a caller mistake; reported with the caller's script position. */
export class LuaArgumentError extends Error {}

const encoder = new TextEncoder();

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
  private bufferView: Buffer = Buffer.alloc(0);
  private bytesView: Uint8Array = new Uint8Array(0);
  private readonly shortStrings = new Map<number, string>();
  private memoryInUse = 0;
  private memoryLimit = Infinity;

  private body: CFunctionBody | null = null;
  private instructionsUsed = 0;
  private instructionBudget = Infinity;
  private deadline = Infinity;
  private exceeded: 'instructions' | 'deadline' | null = null;
  private errorLine: number | null = null;
  private broken = false;
  private closed = false;

  private constructor(
    readonly api: LuaModule,
    /** `short_src` of the script's chunk: frames from it are the ones an error message points at. */
    private readonly scriptSource: string,
  ) {
    this.lengthPointer = api._malloc(8);
    this.debugPointer = api._malloc(LUA_DEBUG_SIZE);
    this.infoSourceLine = this.cstring('Sl');
    this.ensureScratch(4096);

    const allocator = this.register(
      (_ud: number, pointer: number, oldSize: number, newSize: number) =>
        this.allocate(pointer, oldSize, newSize),
      'iiiii',
    );
    this.main = api._lua_newstate(allocator, 0);
    if (this.main === 0) throw new Error('Lua could not create a state');
    // Never expected (all work runs under lua_pcall); a JS exception at least marks the runtime broken
    // instead of Lua calling abort() inside the WebAssembly instance.
    const panic = this.register((): number => {
      throw new Error('Lua panicked: an error escaped every protected call');
    }, 'ii');
    api._lua_atpanic(this.main, panic);

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
    return new LuaRuntime(await createModule(), scriptSource);
  }

  get isBroken(): boolean {
    return this.broken;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Caps the memory Lua may allocate; past it allocations fail with a catchable "not enough memory". */
  setMemoryLimit(bytes: number | undefined): void {
    this.memoryLimit = bytes ?? Infinity;
  }

  /** Bytes the Lua state holds (what the memory limit applies to). */
  memoryUsed(): number {
    return this.memoryInUse;
  }

  /** Index the next registered function gets; stable unless functions leak (wasmoon's per-call hook did). */
  functionTableProbe(): number {
    const pointer = this.api.addFunction(() => 0, 'ii');
    this.api.removeFunction(pointer);
    return pointer;
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
    const length = text.length;
    if (length <= SHORT_STRING) {
      // Most event strings are short ASCII: a JS loop beats a native call per string.
      const heap = this.bytes();
      const pointer = this.scratchPointer;
      let i = 0;
      for (; i < length; i++) {
        const code = text.charCodeAt(i);
        if (code >= 0x80) break;
        heap[pointer + i] = code;
      }
      if (i === length) {
        this.api._lua_pushlstring(L, pointer, length);
        return;
      }
    }
    const room = length * 3;
    if (room > this.scratchSize) this.ensureScratch(room);
    const written = this.buffer().write(text, this.scratchPointer, room, 'utf8');
    this.api._lua_pushlstring(L, this.scratchPointer, written);
  }

  /** Pushes raw bytes as a Lua string. */
  pushBytes(L: number, bytes: Uint8Array): void {
    this.ensureScratch(bytes.length);
    this.api.HEAPU8.set(bytes, this.scratchPointer);
    this.api._lua_pushlstring(L, this.scratchPointer, bytes.length);
  }

  /** The string at `index` decoded as UTF-8 (invalid sequences become U+FFFD). Numbers are converted in place. */
  readString(L: number, index: number): string {
    const pointer = this.api._lua_tolstring(L, index, this.lengthPointer);
    const length = this.api.HEAPU32[this.lengthPointer >> 2]!;
    if (length > SHORT_STRING) return this.buffer().toString('utf8', pointer, pointer + length);
    // Field names and short values repeat all the time and Lua interns short strings, so the same address
    // usually holds the same text; the bytes are compared anyway, since a freed address gets reused.
    const cached = this.shortStrings.get(pointer);
    if (cached !== undefined && cached.length === length) {
      const heap = this.bytes();
      let same = true;
      for (let i = 0; i < length; i++) {
        if (cached.charCodeAt(i) !== heap[pointer + i]) {
          same = false;
          break;
        }
      }
      if (same) return cached;
    }
    const text = this.buffer().toString('utf8', pointer, pointer + length);
    if (this.shortStrings.size >= MAX_SHORT_STRINGS) this.shortStrings.clear();
    this.shortStrings.set(pointer, text);
    return text;
  }

  /** A copy of the string's bytes. */
  readBytes(L: number, index: number): Uint8Array {
    const pointer = this.api._lua_tolstring(L, index, this.lengthPointer);
    const length = this.api.HEAPU32[this.lengthPointer >> 2]!;
    return this.api.HEAPU8.slice(pointer, pointer + length);
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
    // A broken state may not survive lua_close; dropping the whole instance frees it just the same.
    if (!this.broken) {
      try {
        api._lua_close(this.main);
      } catch {
        this.broken = true;
      }
    }
    // After lua_close: it still frees through the allocator registered below.
    for (const pointer of this.functionPointers) api.removeFunction(pointer);
    for (const pointer of this.cstrings.values()) api._free(pointer);
    api._free(this.lengthPointer);
    api._free(this.debugPointer);
    if (this.scratchPointer !== 0) api._free(this.scratchPointer);
    this.functionPointers.length = 0;
    this.cstrings.clear();
  }

  /**
   * The module's memory as a Buffer: its native UTF-8 codec reads and writes in place, without the view
   * objects TextEncoder/TextDecoder need per string. Growing the memory detaches the old buffer (its views
   * then have length 0), hence the rebuild.
   */
  private buffer(): Buffer {
    if (this.bufferView.length === 0) this.bufferView = Buffer.from(this.api.HEAPU8.buffer);
    return this.bufferView;
  }

  private bytes(): Uint8Array {
    if (this.bytesView.length === 0) this.bytesView = this.api.HEAPU8;
    return this.bytesView;
  }

  /**
   * Lua's allocator, counting what the state holds. Refusing an allocation makes Lua raise a memory error
   * that unwinds like any other (after an emergency collection), so the limit is a clean failure.
   */
  private allocate(pointer: number, oldSize: number, newSize: number): number {
    const api = this.api;
    if (newSize === 0) {
      if (pointer !== 0) {
        this.memoryInUse -= oldSize;
        api._free(pointer);
      }
      return 0;
    }
    // For a new block Lua passes the object's type in oldSize, not a size.
    const growth = pointer === 0 ? newSize : newSize - oldSize;
    if (growth > 0 && this.memoryInUse + growth > this.memoryLimit) return 0;
    const moved = api._realloc(pointer, newSize);
    if (moved !== 0) this.memoryInUse += growth;
    return moved;
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
    return this.buffer().toString('utf8', pointer, end);
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

interface EmscriptenModule {
  HEAPU8: Uint8Array;
  HEAP32: Int32Array;
  HEAPU32: Uint32Array;
  addFunction: LuaModule['addFunction'];
  removeFunction: LuaModule['removeFunction'];
}

/** The few WebAssembly globals used here (the project's `lib` settings carry no WebAssembly types). */
interface WasmGlobal {
  instantiate: (...args: unknown[]) => Promise<unknown>;
  Instance: abstract new (...args: never[]) => { exports: WasmExports };
  Memory: abstract new (...args: never[]) => { buffer: ArrayBuffer };
}
type WasmExports = Record<string, unknown>;

let instantiating: Promise<void> = Promise.resolve();

/**
 * Instantiates wasmoon's module and binds the C functions. Emscripten's `Module._lua_*` wrappers assert the
 * runtime state and build two template strings on every call (about 50 ns and garbage); the WebAssembly
 * instance's own exports cost about 10 ns. The instance is only reachable while it is being created, so
 * WebAssembly.instantiate is observed for that moment (our creations are serialized, and the instance is
 * recognised by its memory); should that ever fail, the slower wrappers are used.
 */
async function createModule(): Promise<LuaModule> {
  const previous = instantiating;
  let release = (): void => {};
  instantiating = new Promise<void>((resolve) => (release = resolve));
  await previous;
  const wasm = (globalThis as unknown as { WebAssembly: WasmGlobal }).WebAssembly;
  const original = wasm.instantiate;
  const seen: WasmExports[] = [];
  wasm.instantiate = async function observed(this: unknown, ...args: unknown[]): Promise<unknown> {
    const result = await original.apply(this, args);
    const instance = result instanceof wasm.Instance ? result : (result as { instance?: unknown }).instance;
    if (instance instanceof wasm.Instance) seen.push(instance.exports);
    return result;
  };
  let module: EmscriptenModule;
  try {
    module = (await new LuaFactory().getLuaModule()).module;
  } finally {
    wasm.instantiate = original;
    release();
  }
  const exports = seen.find(
    (e) => e.memory instanceof wasm.Memory && e.memory.buffer === module.HEAPU8.buffer,
  );
  return bindModule(module, exports);
}

function bindModule(module: EmscriptenModule, exports: WasmExports | undefined): LuaModule {
  const bound: Record<string, unknown> = {
    addFunction: module.addFunction,
    removeFunction: module.removeFunction,
  };
  // Views are replaced when the memory grows: always read them from the module.
  Object.defineProperties(bound, {
    HEAPU8: { get: () => module.HEAPU8 },
    HEAP32: { get: () => module.HEAP32 },
    HEAPU32: { get: () => module.HEAPU32 },
  });
  const wrappers = module as unknown as Record<string, unknown>;
  for (const name of LUA_MODULE_FUNCTIONS) {
    const direct = exports?.[name.slice(1)];
    bound[name] = typeof direct === 'function' ? direct : wrappers[name];
  }
  return bound as unknown as LuaModule;
}
