import { OktailError } from '../core/errors.js';
import type { JsonObject, JsonValue } from '../core/json.js';
import { editDistance } from '../core/edit-distance.js';
import type { ScriptSandbox } from './sandbox.js';

/** Global functions every collection script defines. */
export const REQUIRED_HOOKS = ['initial_state', 'cycle_request', 'after_page'] as const;

export interface ScriptIssue {
  line: number | null;
  message: string;
}

export function hookProblems(sandbox: ScriptSandbox): ScriptIssue[] {
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

export function readTags(sandbox: ScriptSandbox): Record<string, JsonValue> {
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

export function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function describe(value: JsonValue | undefined): string {
  if (value === undefined) return 'nil';
  if (value === null) return 'json.null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'a table';
  return `${typeof value} ${JSON.stringify(value).slice(0, 60)}`;
}
