import { OktailError, type ErrorCode } from '../core/errors.js';
import type { JsonValue } from '../core/json.js';
import { LuaFailure, ScriptFailure, type FailureKind, type ScriptLimits } from './failure.js';
import type { ScriptIssue } from './script-checks.js';

/** What a script's worker thread starts from (its `workerData`). */
export interface WorkerInit {
  /** `run`: load the script and serve hook calls; `check`: report its problems (`oktail validate`) and stop. */
  mode: 'run' | 'check';
  name: string;
  chunkName: string;
  source: Uint8Array;
  limits: ScriptLimits;
  /**
   * Whether `now()` reads the `now` each request carries instead of the worker's own clock: a test's clock
   * function cannot cross threads, so the host samples it once per call.
   */
  pinnedClock: boolean;
  /** The pinned clock's reading for the top-level chunk. */
  now: number | null;
}

export type WorkerRequest =
  | {
      type: 'call';
      id: number;
      hook: string;
      args: JsonValue[];
      resultCount: number;
      now: number | null;
    }
  /**
   * A page's events as the bytes Okta sent (shared memory, or moved here and back), answered with a
   * `TransformedEvents`: the events are parsed only in the script's thread, and only those the script
   * looks into.
   */
  | {
      type: 'transform';
      id: number;
      body: Uint8Array;
      offsets: Uint32Array;
      count: number;
      escapedKeys?: Uint8Array;
      now: number | null;
    };

export type WorkerMessage =
  | { type: 'log'; level: string; message: string }
  /** Work under the script's limits starts now: the host arms its watchdog for that long. */
  | { type: 'phase'; hook: string; deadlineMs: number }
  | { type: 'loaded'; tags: Record<string, JsonValue>; hasTransform: boolean }
  | { type: 'checked'; issues: ScriptIssue[] }
  /** `broken`: the Lua runtime itself failed, so the host replaces the worker before the next call. */
  | { type: 'result'; id: number; value: unknown; broken: boolean }
  | { type: 'failure'; id: number | null; error: SerializedError; broken: boolean };

export type SerializedError =
  | {
      kind: 'script';
      message: string;
      hook: string;
      failureKind: FailureKind;
      line: number | null;
      detail: string;
      retryable: boolean;
      cause: { kind: FailureKind; message: string; line: number | null } | null;
    }
  | { kind: 'oktail'; code: ErrorCode; message: string; retryable: boolean }
  | { kind: 'other'; name: string; message: string };

/** Errors cross threads as plain data (a structured clone drops their class and own fields). */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof ScriptFailure) {
    const cause = err.cause instanceof LuaFailure ? err.cause : null;
    return {
      kind: 'script',
      message: err.message,
      hook: err.hook,
      failureKind: err.kind,
      line: err.line,
      detail: err.detail,
      retryable: err.retryable,
      cause: cause === null ? null : { kind: cause.kind, message: cause.message, line: cause.line },
    };
  }
  if (err instanceof OktailError) {
    return { kind: 'oktail', code: err.code, message: err.message, retryable: err.retryable };
  }
  if (err instanceof Error) return { kind: 'other', name: err.name, message: err.message };
  return { kind: 'other', name: 'Error', message: String(err) };
}

export function deserializeError(data: SerializedError): Error {
  switch (data.kind) {
    case 'script': {
      const cause =
        data.cause === null
          ? undefined
          : new LuaFailure(data.cause.kind, data.cause.message, data.cause.line);
      return new ScriptFailure(
        data.message,
        data.hook,
        data.failureKind,
        data.line,
        data.detail,
        data.retryable,
        cause,
      );
    }
    case 'oktail':
      return new OktailError(data.code, data.message, data.retryable);
    default: {
      const err = new Error(data.message);
      err.name = data.name;
      return err;
    }
  }
}
