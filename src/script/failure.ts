import { OktailError } from '../core/errors.js';

// Kept apart from the Lua runtime so that the collector's main thread, which only talks to a script's worker
// thread, never loads the WebAssembly VM (start-up time and memory).

/** Per-script limits. Instruction budget and deadline apply to each hook call; memory to the whole script. */
export interface ScriptLimits {
  /** Lua VM instructions one hook call may execute (the top-level chunk counts as one call). */
  instructionBudget: number;
  /** Wall-clock milliseconds one hook call may take. */
  deadlineMs: number;
  /** Bytes of memory the script's Lua state may hold, its data included. */
  memoryBytes: number;
}

export const DEFAULT_LIMITS: Readonly<ScriptLimits> = {
  instructionBudget: 10_000_000,
  deadlineMs: 1000,
  memoryBytes: 64 * 1024 * 1024,
};

/**
 * A page transform runs one call for up to 1000 events, so its limits grow with the page: the per-call
 * limits stay the bound for a loop that never ends, and each event adds room for honest work (a loaded
 * machine can be ten times slower than an idle one).
 */
export const TRANSFORM_ALLOWANCE_PER_EVENT = { instructions: 20_000, deadlineMs: 5 } as const;

export function transformLimits(limits: ScriptLimits, events: number): ScriptLimits {
  return {
    ...limits,
    instructionBudget: limits.instructionBudget + events * TRANSFORM_ALLOWANCE_PER_EVENT.instructions,
    deadlineMs: limits.deadlineMs + events * TRANSFORM_ALLOWANCE_PER_EVENT.deadlineMs,
  };
}

export type ScriptLog = (level: string, message: string) => void;

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

/** A script failure: an OktailError (SCRIPT_ERROR) that also keeps its parts for `oktail validate`. */
export class ScriptFailure extends OktailError {
  constructor(
    message: string,
    readonly hook: string,
    readonly kind: FailureKind,
    readonly line: number | null,
    /** The failure without the script's name and line, e.g. "syntax error: '=' expected near 'x'". */
    readonly detail: string,
    retryable: boolean,
    cause?: unknown,
  ) {
    super('SCRIPT_ERROR', message, retryable, cause === undefined ? {} : { cause });
    this.name = 'ScriptFailure';
  }
}
