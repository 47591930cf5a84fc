import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

import type {
  CollectionLogic,
  PageDecision,
  PageMeta,
  RawEvents,
  TransformedEvents,
} from '../core/collection-logic.js';
import { OktailError, errorMessage } from '../core/errors.js';
import type { JsonObject, JsonValue } from '../core/json.js';
import { DEFAULT_LIMITS, ScriptFailure, type ScriptLimits, type ScriptLog } from './failure.js';
import { describe, isObject, type ScriptIssue } from './script-checks.js';
import { decodeTransformed, encodeEvents } from './raw-events.js';
import { checkIsolated, IsolatedScript } from './script-host.js';

export { DEFAULT_LIMITS, ScriptFailure, type ScriptLimits } from './failure.js';
export { REQUIRED_HOOKS, type ScriptIssue } from './script-checks.js';

export const BUILTIN_SCRIPT_NAME = 'okta.lua (built-in)';
// Through `../script/`: the same file from dist/script/ and from a chunk of dist/bundle/.
const BUILTIN_URL = new URL('../script/okta.lua', import.meta.url);

/** Longest URL a script may return; anything longer is a bug, not a request. */
const MAX_URL_LENGTH = 16 * 1024;

export interface LoadCollectionScriptOptions {
  /** A Lua 5.4 file; absent: the built-in okta.lua. */
  path?: string | undefined;
  /** Receives the script's `log()` and `print()` lines (rate-limited per call). */
  log?: ScriptLog | undefined;
  limits?: Partial<ScriptLimits> | undefined;
  /**
   * Clock behind the script's `now()`; for tests. The script runs in another thread, so the clock is read
   * once per hook call and `now()` gives that instant throughout the call.
   */
  clock?: (() => number) | undefined;
}

/** The built-in script's text, for `oktail script print okta`. */
export async function builtinScriptSource(): Promise<string> {
  return readFile(BUILTIN_URL, 'utf8');
}

/**
 * Loads a collection script (or the built-in one) into its own sandbox, in its own worker thread (the
 * built-in one in this thread, see InThreadScript), and checks that it defines the required hooks. Fails with a non-retryable SCRIPT_ERROR when the script cannot
 * be used as it stands.
 */
export async function loadCollectionScript(
  options: LoadCollectionScriptOptions = {},
): Promise<CollectionLogic> {
  const limits = resolveLimits(options.limits);
  const { name, chunkName, source } = await readScript(options.path);
  const settings = { name, chunkName, source, limits, log: options.log, clock: options.clock };
  const script: Script =
    options.path === undefined
      ? await (await import('./in-thread-script.js')).InThreadScript.load(settings)
      : await IsolatedScript.load(settings);
  return new ScriptCollectionLogic(name, script);
}

/**
 * Problems `oktail validate` reports for a script: syntax errors, a failing top-level chunk, missing or
 * mistyped hooks, bad `tags`, and a dry run of `initial_state` and `cycle_request` on a sample context.
 * Loads the script under the same sandbox, limits and watchdog as a real run. An empty list means usable.
 */
export async function checkCollectionScript(
  path: string,
  options: { limits?: Partial<ScriptLimits> } = {},
): Promise<ScriptIssue[]> {
  let script: Awaited<ReturnType<typeof readScript>>;
  try {
    script = await readScript(path);
  } catch (err) {
    return [{ line: null, message: errorMessage(err) }];
  }
  return checkIsolated({ ...script, limits: resolveLimits(options.limits) });
}

/** A loaded script, in its own watched thread or (the built-in one) in this thread. */
type Script = Pick<IsolatedScript, 'tags' | 'hasTransform' | 'call' | 'transformPage' | 'close'>;

class ScriptCollectionLogic implements CollectionLogic {
  readonly transform?: (events: JsonObject[]) => Promise<(JsonObject | null)[]>;
  readonly transformPage?: (events: RawEvents) => Promise<TransformedEvents>;
  readonly tags: Readonly<Record<string, JsonValue>>;

  constructor(
    readonly name: string,
    private readonly script: Script,
  ) {
    this.tags = script.tags;
    if (script.hasTransform) {
      this.transformPage = async (events) => {
        if (events.count === 0) return { edits: new Uint8Array(0), text: [] };
        return this.script.transformPage(events);
      };
      this.transform = async (events) => {
        if (events.length === 0) return [];
        const raw = encodeEvents(events);
        return decodeTransformed(raw, await this.script.transformPage(raw));
      };
    }
  }

  async initialState(input: { startFrom: string | null; now: string }): Promise<JsonObject> {
    const ctx: JsonObject = { now: input.now };
    if (input.startFrom !== null) ctx.start_from = input.startFrom;
    const [state] = await this.script.call('initial_state', [ctx], 1);
    if (!isObject(state))
      throw this.contractError('initial_state', `must return a state table (got ${describe(state)})`);
    return state;
  }

  async cycleRequest(state: JsonObject): Promise<string> {
    const [url] = await this.script.call('cycle_request', [state], 1);
    return this.checkUrl('cycle_request', url, false) as string;
  }

  async afterPage(state: JsonObject, page: PageMeta): Promise<PageDecision> {
    const [next, url] = await this.script.call('after_page', [state, pageToJson(page)], 2);
    if (!isObject(next)) {
      throw this.contractError('after_page', `must return the new state table first (got ${describe(next)})`);
    }
    return { state: next, next: this.checkUrl('after_page', url, true) };
  }

  async close(): Promise<void> {
    await this.script.close();
  }

  private checkUrl(hook: string, url: JsonValue | undefined, optional: boolean): string | null {
    if ((url === undefined || url === null) && optional) return null;
    if (typeof url !== 'string' || url === '') {
      throw this.contractError(
        hook,
        `must return a URL string${optional ? ' or nil' : ''} (got ${describe(url)})`,
      );
    }
    if (url.length > MAX_URL_LENGTH)
      throw this.contractError(hook, `returned a URL longer than ${MAX_URL_LENGTH} characters`);
    return url;
  }

  private contractError(hook: string, message: string): ScriptFailure {
    return new ScriptFailure(
      `${this.name}: ${hook} ${message}`,
      hook,
      'error',
      null,
      `${hook} ${message}`,
      true,
    );
  }
}

async function readScript(
  path: string | undefined,
): Promise<{ name: string; chunkName: string; source: Uint8Array }> {
  if (path === undefined) {
    return { name: BUILTIN_SCRIPT_NAME, chunkName: 'okta.lua', source: await readFile(BUILTIN_URL) };
  }
  let source: Uint8Array;
  try {
    source = await readFile(path);
  } catch (err) {
    throw new OktailError('SCRIPT_ERROR', `${path}: cannot read the script: ${errorMessage(err)}`, false, {
      cause: err,
    });
  }
  // Lua truncates chunk names to 59 bytes in its own messages; the base name is what a reader needs there.
  return { name: path, chunkName: basename(path).slice(0, 40), source };
}

function resolveLimits(limits: Partial<ScriptLimits> | undefined): ScriptLimits {
  const resolved = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof ScriptLimits)[]) {
    const value = limits?.[key];
    if (value === undefined) continue;
    if (!Number.isFinite(value) || value <= 0) {
      throw new OktailError(
        'CONFIG_INVALID',
        `script limit ${key} must be a positive number (got ${value})`,
        false,
      );
    }
    resolved[key] = value;
  }
  return resolved;
}

function pageToJson(page: PageMeta): JsonObject {
  const ref = (r: PageMeta['first']): JsonValue =>
    r === null ? null : { uuid: r.uuid, published: r.published };
  return {
    status: page.status,
    url: page.url,
    headers: page.headers,
    links: page.links,
    count: page.count,
    first: ref(page.first),
    last: ref(page.last),
  };
}
