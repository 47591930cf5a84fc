/**
 * The slice of Lua's C API (as compiled into wasmoon's WebAssembly module) that the sandbox uses.
 *
 * wasmoon's own wrappers go through `ccall` and its higher-level helpers carry the traps listed in
 * docs (stack left dirty by `doString`, a hook registered per call, JS errors thrown through Lua frames).
 * Calling the C functions directly keeps every stack slot and every hook under our control. Pointers are
 * numbers (wasm32); `lua_Integer` is 64-bit, hence the bigints.
 */
export interface LuaModule {
  readonly HEAPU8: Uint8Array;
  readonly HEAP32: Int32Array;
  readonly HEAPU32: Uint32Array;
  _malloc(size: number): number;
  _realloc(ptr: number, size: number): number;
  _free(ptr: number): void;
  addFunction(fn: (...args: never[]) => unknown, signature: string): number;
  removeFunction(ptr: number): void;

  _lua_newstate(alloc: number, ud: number): number;
  _lua_close(L: number): void;
  _lua_atpanic(L: number, fn: number): number;
  _lua_newthread(L: number): number;
  _lua_gettop(L: number): number;
  _lua_settop(L: number, index: number): void;
  _lua_pushvalue(L: number, index: number): void;
  _lua_absindex(L: number, index: number): number;
  _lua_checkstack(L: number, n: number): number;
  _lua_type(L: number, index: number): number;
  _lua_toboolean(L: number, index: number): number;
  _lua_tonumberx(L: number, index: number, isnum: number): number;
  _lua_isinteger(L: number, index: number): number;
  _lua_tolstring(L: number, index: number, lenPtr: number): number;
  _lua_touserdata(L: number, index: number): number;
  _lua_topointer(L: number, index: number): number;
  _lua_rawlen(L: number, index: number): number;
  _lua_rawequal(L: number, a: number, b: number): number;
  _lua_pushnil(L: number): void;
  _lua_pushnumber(L: number, n: number): void;
  _lua_pushinteger(L: number, n: bigint): void;
  _lua_pushlstring(L: number, s: number, len: number): number;
  _lua_pushcclosure(L: number, fn: number, n: number): void;
  _lua_pushboolean(L: number, b: number): void;
  _lua_pushlightuserdata(L: number, p: number): void;
  _lua_getglobal(L: number, name: number): number;
  _lua_getfield(L: number, index: number, key: number): number;
  _lua_rawget(L: number, index: number): number;
  _lua_rawgeti(L: number, index: number, n: bigint): number;
  _lua_createtable(L: number, narr: number, nrec: number): void;
  _lua_getmetatable(L: number, index: number): number;
  _lua_setglobal(L: number, name: number): void;
  _lua_setfield(L: number, index: number, key: number): void;
  _lua_rawset(L: number, index: number): void;
  _lua_rawseti(L: number, index: number, n: bigint): void;
  _lua_setmetatable(L: number, index: number): number;
  _lua_callk(L: number, nargs: number, nresults: number, ctx: number, k: number): void;
  _lua_pcallk(L: number, nargs: number, nresults: number, errfunc: number, ctx: number, k: number): number;
  _lua_error(L: number): number;
  _lua_next(L: number, index: number): number;
  _lua_concat(L: number, n: number): void;
  _lua_getstack(L: number, level: number, ar: number): number;
  _lua_getinfo(L: number, what: number, ar: number): number;
  _lua_sethook(L: number, fn: number, mask: number, count: number): void;
  _lua_gethookcount(L: number): number;
  _luaL_loadbufferx(L: number, buf: number, size: number, name: number, mode: number): number;
  _luaL_ref(L: number, t: number): number;
  _luaL_where(L: number, level: number): void;
  _luaopen_base(L: number): number;
  _luaopen_table(L: number): number;
  _luaopen_string(L: number): number;
  _luaopen_math(L: number): number;
  _luaopen_utf8(L: number): number;
  _luaopen_coroutine(L: number): number;
}

/** The C functions of LuaModule, bound by name when the module is created. */
export const LUA_MODULE_FUNCTIONS = [
  '_malloc',
  '_realloc',
  '_free',
  '_lua_newstate',
  '_lua_close',
  '_lua_atpanic',
  '_lua_newthread',
  '_lua_gettop',
  '_lua_settop',
  '_lua_pushvalue',
  '_lua_absindex',
  '_lua_checkstack',
  '_lua_type',
  '_lua_toboolean',
  '_lua_tonumberx',
  '_lua_isinteger',
  '_lua_tolstring',
  '_lua_touserdata',
  '_lua_topointer',
  '_lua_rawlen',
  '_lua_rawequal',
  '_lua_pushnil',
  '_lua_pushnumber',
  '_lua_pushinteger',
  '_lua_pushlstring',
  '_lua_pushcclosure',
  '_lua_pushboolean',
  '_lua_pushlightuserdata',
  '_lua_getglobal',
  '_lua_getfield',
  '_lua_rawget',
  '_lua_rawgeti',
  '_lua_createtable',
  '_lua_getmetatable',
  '_lua_setglobal',
  '_lua_setfield',
  '_lua_rawset',
  '_lua_rawseti',
  '_lua_setmetatable',
  '_lua_callk',
  '_lua_pcallk',
  '_lua_error',
  '_lua_next',
  '_lua_concat',
  '_lua_getstack',
  '_lua_getinfo',
  '_lua_sethook',
  '_lua_gethookcount',
  '_luaL_loadbufferx',
  '_luaL_ref',
  '_luaL_where',
  '_luaopen_base',
  '_luaopen_table',
  '_luaopen_string',
  '_luaopen_math',
  '_luaopen_utf8',
  '_luaopen_coroutine',
] as const satisfies readonly (keyof LuaModule)[];

export const LUA_OK = 0;
export const LUA_ERRRUN = 2;
export const LUA_ERRSYNTAX = 3;
export const LUA_ERRMEM = 4;
export const LUA_ERRERR = 5;

export const LUA_TNONE = -1;
export const LUA_TNIL = 0;
export const LUA_TBOOLEAN = 1;
export const LUA_TLIGHTUSERDATA = 2;
export const LUA_TNUMBER = 3;
export const LUA_TSTRING = 4;
export const LUA_TTABLE = 5;
export const LUA_TFUNCTION = 6;

export const LUA_REGISTRYINDEX = -1_000_000 - 1000;
/** Registry slot of the globals table (`LUA_RIDX_GLOBALS`). */
export const LUA_RIDX_GLOBALS = 2n;
export const LUA_MASKCOUNT = 8;
export const LUA_MULTRET = -1;

/** `struct lua_Debug` offsets for wasm32 Lua 5.4 (checked by a test against a real frame). */
export const LUA_DEBUG_SIZE = 256;
export const LUA_DEBUG_CURRENTLINE = 24;
export const LUA_DEBUG_LINEDEFINED = 28;
export const LUA_DEBUG_SHORT_SRC = 44;
export const LUA_IDSIZE = 60;

/** Emscripten implements `longjmp` (hence `lua_error`) by throwing a number through JS frames. */
export function isLongjmp(thrown: unknown): boolean {
  return typeof thrown === 'number';
}

export const LUA_TYPE_NAMES: Readonly<Record<number, string>> = {
  [LUA_TNONE]: 'no value',
  [LUA_TNIL]: 'nil',
  [LUA_TBOOLEAN]: 'boolean',
  [LUA_TLIGHTUSERDATA]: 'userdata',
  [LUA_TNUMBER]: 'number',
  [LUA_TSTRING]: 'string',
  [LUA_TTABLE]: 'table',
  [LUA_TFUNCTION]: 'function',
  7: 'userdata',
  8: 'thread',
};
