import type { JsonObject, JsonValue } from '../core/json.js';
import {
  LUA_REGISTRYINDEX,
  LUA_TBOOLEAN,
  LUA_TLIGHTUSERDATA,
  LUA_TNIL,
  LUA_TNONE,
  LUA_TNUMBER,
  LUA_TSTRING,
  LUA_TTABLE,
} from './lua-api.js';
import type { LuaRuntime } from './lua-runtime.js';

/** Deeper than any Okta event; also what stops a table that contains itself. */
export const MAX_TABLE_DEPTH = 64;

/** A value that cannot cross between JSON and Lua; `path` says where (e.g. `actor.id`). */
export class ConversionError extends Error {
  readonly path: string[] = [];

  get where(): string {
    return this.path.length === 0 ? '' : this.path.join('.');
  }
}

export interface PushOptions {
  /**
   * JSON null as `nil` (the key is simply absent), natural for small hook arguments, or as the `json.null`
   * sentinel, which keeps an event's nulls through a `transform` round trip.
   */
  nullAsNil: boolean;
  /** Records pushed objects by table address so their key order can be restored on the way back. */
  keyOrder?: Map<number, JsonObject> | undefined;
}

/**
 * Moves JSON values into Lua and back. Arrays get a protected marker metatable so that an empty array stays
 * an array; JSON null is a NULL light userdata (`json.null`) that scripts can compare against but not forge.
 * Every function here may raise a Lua error (allocation) and so runs inside `LuaRuntime.run`.
 */
/** Tables with this metatable are event proxies (see the sandbox's transform), read by `read`. */
export interface ProxyReader {
  metatableRef: number;
  read(L: number, index: number): JsonObject;
}

export class JsonBridge {
  constructor(
    private readonly runtime: LuaRuntime,
    private readonly arrayMetatableRef: number,
    private readonly proxies?: ProxyReader,
  ) {}

  push(L: number, value: JsonValue | undefined, options: PushOptions, depth = 0): void {
    const api = this.runtime.api;
    switch (typeof value) {
      case 'string':
        this.runtime.pushString(L, value);
        return;
      case 'number':
        if (Number.isSafeInteger(value)) api._lua_pushinteger(L, BigInt(value));
        else api._lua_pushnumber(L, value);
        return;
      case 'boolean':
        api._lua_pushboolean(L, value ? 1 : 0);
        return;
      case 'undefined':
        api._lua_pushnil(L);
        return;
      case 'object':
        break;
      default:
        throw new ConversionError(`a ${typeof value} is not a JSON value`);
    }
    if (value === null) {
      if (options.nullAsNil) api._lua_pushnil(L);
      else api._lua_pushlightuserdata(L, 0);
      return;
    }
    if (depth >= MAX_TABLE_DEPTH)
      throw new ConversionError(`nested more than ${MAX_TABLE_DEPTH} levels deep`);
    if (api._lua_checkstack(L, 4) === 0) throw new ConversionError('Lua stack overflow');
    if (Array.isArray(value)) {
      api._lua_createtable(L, value.length, 0);
      for (let i = 0; i < value.length; i++) {
        const item = value[i];
        // An array keeps its positions, so a null inside one is always the sentinel.
        if (item === null || item === undefined) api._lua_pushlightuserdata(L, 0);
        else this.pushChild(L, item, options, depth, i);
        api._lua_rawseti(L, -2, BigInt(i + 1));
      }
      api._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(this.arrayMetatableRef));
      api._lua_setmetatable(L, -2);
      return;
    }
    const keys = Object.keys(value);
    api._lua_createtable(L, 0, keys.length);
    options.keyOrder?.set(api._lua_topointer(L, -1), value);
    for (const key of keys) {
      const item = value[key];
      if (item === undefined || (item === null && options.nullAsNil)) continue;
      const keyPointer = this.runtime.cstring(key);
      if (keyPointer !== 0) {
        this.pushChild(L, item, options, depth, key);
        api._lua_setfield(L, -2, keyPointer);
      } else {
        this.runtime.pushString(L, key);
        this.pushChild(L, item, options, depth, key);
        api._lua_rawset(L, -3);
      }
    }
  }

  /**
   * The Lua value at `index` as JSON; `undefined` for nil. A table is an array when its keys are exactly the
   * integers 1..n (or it carries the array marker, for an empty one); otherwise an object, with integer keys
   * written as decimal strings.
   */
  read(L: number, index: number, keyOrder?: Map<number, JsonObject>, depth = 0): JsonValue | undefined {
    const api = this.runtime.api;
    switch (api._lua_type(L, index)) {
      case LUA_TNIL:
      case LUA_TNONE:
        return undefined;
      case LUA_TBOOLEAN:
        return api._lua_toboolean(L, index) !== 0;
      case LUA_TNUMBER: {
        const n = api._lua_tonumberx(L, index, 0);
        if (!Number.isFinite(n)) throw new ConversionError(`${String(n)} is not a JSON number`);
        return n === 0 ? 0 : n;
      }
      case LUA_TSTRING:
        return this.runtime.readString(L, index);
      case LUA_TLIGHTUSERDATA:
        if (api._lua_touserdata(L, index) === 0) return null;
        break;
      case LUA_TTABLE:
        return this.readTable(L, api._lua_absindex(L, index), keyOrder, depth);
    }
    throw new ConversionError(`a ${this.runtime.typeName(L, index)} value is not JSON`);
  }

  /** Reads the table at `index` as a JSON object, refusing arrays and other values. */
  readObject(L: number, index: number, keyOrder?: Map<number, JsonObject>): JsonObject | null {
    if (this.runtime.api._lua_type(L, index) !== LUA_TTABLE) return null;
    const value = this.read(L, index, keyOrder);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
    return value;
  }

  isArrayMarked(L: number, index: number): boolean {
    return this.hasMetatable(L, index, this.arrayMetatableRef);
  }

  private hasMetatable(L: number, index: number, ref: number): boolean {
    const api = this.runtime.api;
    if (api._lua_getmetatable(L, index) === 0) return false;
    api._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(ref));
    const marked = api._lua_rawequal(L, -1, -2) !== 0;
    api._lua_settop(L, -3);
    return marked;
  }

  private pushChild(
    L: number,
    value: JsonValue,
    options: PushOptions,
    depth: number,
    key: string | number,
  ): void {
    try {
      this.push(L, value, options, depth + 1);
    } catch (err) {
      if (err instanceof ConversionError) err.path.unshift(String(key));
      throw err;
    }
  }

  private readTable(
    L: number,
    index: number,
    keyOrder: Map<number, JsonObject> | undefined,
    depth: number,
  ): JsonValue {
    const api = this.runtime.api;
    if (depth >= MAX_TABLE_DEPTH) {
      throw new ConversionError(
        `nested more than ${MAX_TABLE_DEPTH} levels deep (does a table contain itself?)`,
      );
    }
    if (api._lua_checkstack(L, 4) === 0) throw new ConversionError('Lua stack overflow');
    if (this.proxies !== undefined && this.hasMetatable(L, index, this.proxies.metatableRef)) {
      return this.proxies.read(L, index);
    }
    const marked = this.isArrayMarked(L, index);
    if (!marked) {
      const object = this.readStringKeyed(L, index, keyOrder, depth);
      if (object !== null) return object;
    }
    return this.readAnyKeyed(L, index, marked, keyOrder, depth);
  }

  /**
   * The common case, an object with string keys, read straight into a JS object; null (having read nothing
   * for good) at the first other key. A table the host pushed gets its original key order back: the
   * original keys are laid down first, and those the script removed are deleted at the end.
   */
  private readStringKeyed(
    L: number,
    index: number,
    keyOrder: Map<number, JsonObject> | undefined,
    depth: number,
  ): JsonObject | null {
    const api = this.runtime.api;
    const object: Record<string, JsonValue | undefined> = {};
    const original = keyOrder?.get(api._lua_topointer(L, index));
    const originalKeys = original === undefined ? null : Object.keys(original);
    if (originalKeys !== null) for (const key of originalKeys) setOwn(object as JsonObject, key, undefined);
    const top = api._lua_gettop(L);
    api._lua_pushnil(L);
    while (api._lua_next(L, index) !== 0) {
      if (api._lua_type(L, -2) !== LUA_TSTRING) {
        api._lua_settop(L, top);
        return null;
      }
      const key = this.runtime.readString(L, -2);
      let value: JsonValue | undefined;
      try {
        value = this.read(L, top + 2, keyOrder, depth + 1);
      } catch (err) {
        if (err instanceof ConversionError) err.path.unshift(key);
        throw err;
      }
      setOwn(object as JsonObject, key, value ?? null);
      api._lua_settop(L, top + 1);
    }
    if (originalKeys !== null) {
      for (const key of originalKeys) if (object[key] === undefined) delete object[key];
    }
    return object as JsonObject;
  }

  /** Arrays, and tables mixing key types: integer keys 1..n make an array, anything else an object. */
  private readAnyKeyed(
    L: number,
    index: number,
    marked: boolean,
    keyOrder: Map<number, JsonObject> | undefined,
    depth: number,
  ): JsonValue {
    const api = this.runtime.api;
    const keys: (string | number)[] = [];
    const values: JsonValue[] = [];
    let integerKeys = 0;
    let maxInteger = 0;
    const top = api._lua_gettop(L);
    api._lua_pushnil(L);
    while (api._lua_next(L, index) !== 0) {
      let key: string | number;
      const keyType = api._lua_type(L, -2);
      if (keyType === LUA_TSTRING) {
        key = this.runtime.readString(L, -2);
      } else if (keyType === LUA_TNUMBER) {
        // Read without lua_tolstring: converting the key in place would break lua_next.
        const n = api._lua_tonumberx(L, -2, 0);
        if (Number.isSafeInteger(n) && n >= 1 && api._lua_isinteger(L, -2) !== 0) {
          key = n;
          integerKeys++;
          if (n > maxInteger) maxInteger = n;
        } else {
          key = String(n);
        }
      } else {
        throw new ConversionError(`a ${this.runtime.typeName(L, -2)} key cannot be a JSON object key`);
      }
      let value: JsonValue | undefined;
      try {
        value = this.read(L, top + 2, keyOrder, depth + 1);
      } catch (err) {
        if (err instanceof ConversionError) err.path.unshift(String(key));
        throw err;
      }
      api._lua_settop(L, top + 1);
      keys.push(key);
      values.push(value ?? null);
    }
    // Holes (removed items) become nulls, within reason: {[1e9] = x} stays an object.
    const dense = maxInteger <= integerKeys * 2 + 16;
    if (integerKeys === keys.length && dense && (integerKeys > 0 || marked)) {
      const array: JsonValue[] = new Array<JsonValue>(maxInteger).fill(null);
      for (let i = 0; i < keys.length; i++) array[(keys[i] as number) - 1] = values[i]!;
      return array;
    }
    const object: JsonObject = {};
    for (let i = 0; i < keys.length; i++) setOwn(object, String(keys[i]), values[i]);
    return object;
  }
}

/** Plain assignment would turn a `__proto__` key into a prototype change. */
export function setOwn(object: JsonObject, key: string, value: JsonValue | undefined): void {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    (object as Record<string, JsonValue | undefined>)[key] = value;
  }
}
