import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

import type { CollectionLogic, PageDecision, PageMeta } from '../core/collection-logic.js';
import { OktailError, errorMessage } from '../core/errors.js';
import type { JsonObject, JsonValue } from '../core/json.js';
import {
  DEFAULT_LIMITS,
  ScriptFailure,
  ScriptSandbox,
  type ScriptLimits,
  type ScriptLog,
} from './sandbox.js';

export { DEFAULT_LIMITS, ScriptFailure, type ScriptLimits } from './sandbox.js';

export const BUILTIN_SCRIPT_NAME = 'okta.lua (built-in)';
const BUILTIN_URL = new URL('./okta.lua', import.meta.url);

/** Global functions every collection script defines. */
export const REQUIRED_HOOKS = ['initial_state', 'cycle_request', 'after_page'] as const;

/** Longest URL a script may return; anything longer is a bug, not a request. */
const MAX_URL_LENGTH = 16 * 1024;

export interface LoadCollectionScriptOptions {
  /** A Lua 5.4 file; absent: the built-in okta.lua. */
  path?: string | undefined;
  /** Receives the script's `log()` and `print()` lines (rate-limited per call). */
  log?: ScriptLog | undefined;
  limits?: Partial<ScriptLimits> | undefined;
  /** Clock behind the script's `now()`; for tests. */
  clock?: (() => number) | undefined;
}

/** The built-in script's text, for `oktail script print okta`. */
export async function builtinScriptSource(): Promise<string> {
  return readFile(BUILTIN_URL, 'utf8');
}

/**
 * Loads a collection script (or the built-in one) into its own sandbox and checks that it defines the
 * required hooks. Fails with a non-retryable SCRIPT_ERROR when the script cannot be used as it stands.
 */
export async function loadCollectionScript(
  options: LoadCollectionScriptOptions = {},
): Promise<CollectionLogic> {
  const limits = resolveLimits(options.limits);
  const { name, chunkName, source } = await readScript(options.path);
  const create = async (): Promise<{ sandbox: ScriptSandbox; tags: Record<string, JsonValue> }> => {
    const sandbox = await ScriptSandbox.create({
      name,
      chunkName,
      limits,
      log: options.log,
      clock: options.clock,
    });
    try {
      sandbox.loadScript(source);
      const problems = hookProblems(sandbox);
      if (problems.length > 0) {
        throw new OktailError('SCRIPT_ERROR', `${name}: ${problems.map((p) => p.message).join('; ')}`, false);
      }
      return { sandbox, tags: readTags(sandbox) };
    } catch (err) {
      sandbox.close();
      throw err;
    }
  };
  const first = await create();
  return new ScriptCollectionLogic(name, first.sandbox, first.tags, async () => (await create()).sandbox);
}

export interface ScriptIssue {
  line: number | null;
  message: string;
}

/**
 * Problems `oktail validate` reports for a script: syntax errors, a failing top-level chunk, missing or
 * mistyped hooks, bad `tags`, and a dry run of `initial_state` and `cycle_request` on a sample context.
 * Loads the script under the same sandbox and limits as a real run. An empty list means usable.
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
  const sandbox = await ScriptSandbox.create({
    name: script.name,
    chunkName: script.chunkName,
    limits: resolveLimits(options.limits),
  });
  try {
    try {
      sandbox.loadScript(script.source);
    } catch (err) {
      return [issueOf(err)];
    }
    const issues = hookProblems(sandbox);
    try {
      readTags(sandbox);
    } catch (err) {
      issues.push({ line: null, message: errorMessage(err).replace(`${script.name}: `, '') });
    }
    if (issues.length > 0) return issues;
    try {
      const now = new Date().toISOString();
      const [state] = sandbox.call('initial_state', [{ now }], 1);
      if (!isObject(state))
        return [{ line: null, message: `initial_state must return a state table (got ${describe(state)})` }];
      const [url] = sandbox.call('cycle_request', [state], 1);
      if (typeof url !== 'string' || url === '') {
        return [{ line: null, message: `cycle_request must return a URL string (got ${describe(url)})` }];
      }
    } catch (err) {
      return [issueOf(err)];
    }
    return [];
  } finally {
    sandbox.close();
  }
}

class ScriptCollectionLogic implements CollectionLogic {
  readonly transform?: (events: JsonObject[]) => Promise<(JsonObject | null)[]>;
  private closed = false;
  private rebuilding: Promise<ScriptSandbox> | null = null;

  constructor(
    readonly name: string,
    private sandbox: ScriptSandbox,
    readonly tags: Readonly<Record<string, JsonValue>>,
    private readonly rebuild: () => Promise<ScriptSandbox>,
  ) {
    if (sandbox.globalType('transform') === 'function') {
      this.transform = async (events) => {
        if (events.length === 0) return [];
        return (await this.ready()).transform(events);
      };
    }
  }

  async initialState(input: { startFrom: string | null; now: string }): Promise<JsonObject> {
    const ctx: JsonObject = { now: input.now };
    if (input.startFrom !== null) ctx.start_from = input.startFrom;
    const [state] = (await this.ready()).call('initial_state', [ctx], 1);
    if (!isObject(state))
      throw this.contractError('initial_state', `must return a state table (got ${describe(state)})`);
    return state;
  }

  async cycleRequest(state: JsonObject): Promise<string> {
    const [url] = (await this.ready()).call('cycle_request', [state], 1);
    return this.checkUrl('cycle_request', url, false) as string;
  }

  async afterPage(state: JsonObject, page: PageMeta): Promise<PageDecision> {
    const [next, url] = (await this.ready()).call('after_page', [state, pageToJson(page)], 2);
    if (!isObject(next)) {
      throw this.contractError('after_page', `must return the new state table first (got ${describe(next)})`);
    }
    return { state: next, next: this.checkUrl('after_page', url, true) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sandbox.close();
  }

  /** The sandbox, rebuilt first if the Lua runtime itself failed (the script's globals start afresh). */
  private async ready(): Promise<ScriptSandbox> {
    if (this.closed) throw new OktailError('SCRIPT_ERROR', `${this.name}: the script has been closed`, false);
    if (!this.sandbox.broken) return this.sandbox;
    // Concurrent callers share one rebuild rather than each creating (and leaking) a sandbox.
    this.rebuilding ??= (async () => {
      this.sandbox.close();
      try {
        this.sandbox = await this.rebuild();
      } finally {
        this.rebuilding = null;
      }
      return this.sandbox;
    })();
    return this.rebuilding;
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

function hookProblems(sandbox: ScriptSandbox): ScriptIssue[] {
  const issues: ScriptIssue[] = [];
  let functions: Map<string, number | null> | undefined;
  for (const hook of REQUIRED_HOOKS) {
    const type = sandbox.globalType(hook);
    if (type === 'function') continue;
    if (type !== 'nil') {
      issues.push({ line: null, message: `${hook} must be a function (it is a ${type})` });
      continue;
    }
    functions ??= sandbox.globalFunctions();
    const near = [...functions].find(([name]) => looksLike(name, hook));
    issues.push(
      near === undefined
        ? { line: null, message: `missing required function ${hook}` }
        : { line: near[1], message: `missing required function ${hook} (is ${near[0]} a misspelling?)` },
    );
  }
  const transform = sandbox.globalType('transform');
  if (transform !== 'nil' && transform !== 'function') {
    issues.push({ line: null, message: `transform must be a function (it is a ${transform})` });
  }
  return issues;
}

function readTags(sandbox: ScriptSandbox): Record<string, JsonValue> {
  const tags = sandbox.readGlobal('tags');
  if (tags === undefined) return {};
  if (isObject(tags)) return tags;
  // An empty Lua table reads back as {} already; anything else is a mistake.
  throw new OktailError(
    'SCRIPT_ERROR',
    `${sandbox.name}: tags must be a table of field = value (got ${describe(tags)})`,
    false,
  );
}

/** Same name ignoring case and underscores, or one edit away: likely the hook the author meant. */
function looksLike(candidate: string, hook: string): boolean {
  const a = candidate.toLowerCase().replace(/_/g, '');
  const b = hook.toLowerCase().replace(/_/g, '');
  return a === b || editDistance(a, b) <= 2;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

function issueOf(err: unknown): ScriptIssue {
  if (err instanceof ScriptFailure) return { line: err.line, message: err.detail };
  return { line: null, message: errorMessage(err) };
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

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: JsonValue | undefined): string {
  if (value === undefined) return 'nil';
  if (value === null) return 'json.null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'a table';
  return `${typeof value} ${JSON.stringify(value).slice(0, 60)}`;
}
