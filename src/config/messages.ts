import * as z from 'zod';
import type { PathSegment } from './errors.js';
import { editDistance } from '../core/edit-distance.js';

/** What the issue mapper may learn about the input; the loader decides what is safe to show. */
export interface IssueContext {
  /** The (interpolated) input value at a path; undefined when absent. */
  valueAt(path: readonly PathSegment[]): unknown;
  /** Whether the key is written in the file, even without a value. */
  isWritten(path: readonly PathSegment[]): boolean;
  /**
   * Whether the value, or text derived from it, may appear in a message: false for secrets and for
   * anything that came from the environment (which may hold a secret put in the wrong place).
   */
  isShowable(path: readonly PathSegment[]): boolean;
  /** Keys the schema allows in the object at a path, for "did you mean" suggestions. */
  allowedKeys(path: readonly PathSegment[]): string[];
}

export interface PathedMessage {
  path: PathSegment[];
  message: string;
}

type Issue = z.core.$ZodIssue;

// Messages this module's schemas set are lower-case sentences; zod's defaults start with a capital.
function isOwnMessage(message: string): boolean {
  return /^[a-z]/.test(message);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (value instanceof Date) return 'date';
  if (typeof value === 'object') return 'mapping';
  return typeof value;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  null: 'empty',
};

export function issueToMessages(issue: Issue, ctx: IssueContext): PathedMessage[] {
  const path = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol');
  const value = ctx.valueAt(path);
  // ", got 5" for literal numbers only; strings are never echoed (a token may sit in the wrong key).
  const got = ctx.isShowable(path) && (typeof value === 'number' || typeof value === 'boolean');
  const gotSuffix = got ? `, got ${String(value)}` : '';

  switch (issue.code) {
    case 'invalid_type': {
      if (value === undefined) {
        return [{ path, message: ctx.isWritten(path) ? 'must have a value' : 'is required' }];
      }
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      if (issue.expected === 'int' && typeof value === 'number') {
        return [{ path, message: `must be a whole number${gotSuffix}` }];
      }
      return [{ path, message: `must be ${expected}, got ${typeName(value)}` }];
    }
    case 'too_small':
    case 'too_big': {
      if (isOwnMessage(issue.message)) {
        return [
          { path, message: issue.origin === 'number' ? `${issue.message}${gotSuffix}` : issue.message },
        ];
      }
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const inclusive = issue.inclusive !== false;
      const words =
        issue.code === 'too_small'
          ? inclusive
            ? 'at least'
            : 'greater than'
          : inclusive
            ? 'at most'
            : 'less than';
      const unit = issue.origin === 'string' ? ' characters' : issue.origin === 'array' ? ' items' : '';
      return [{ path, message: `must be ${words} ${String(bound)}${unit}${gotSuffix}` }];
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => String(v));
      const message = values.length === 1 ? `must be ${values[0]}` : `must be one of ${values.join(', ')}`;
      return [{ path, message }];
    }
    case 'invalid_union': {
      if (issue.discriminator !== undefined && 'options' in issue && issue.options) {
        const options = issue.options.map((v) => String(v));
        const list = options.length === 1 ? `${options[0]}` : `one of ${options.join(', ')}`;
        return [{ path, message: value === undefined ? `is required (${list})` : `must be ${list}` }];
      }
      return [{ path, message: 'does not match any allowed form' }];
    }
    case 'unrecognized_keys': {
      const allowed = ctx.allowedKeys(path);
      return issue.keys.map((key) => {
        const suggestion = closest(key, allowed);
        const hint = suggestion
          ? `; did you mean ${suggestion}?`
          : allowed.length > 0
            ? ` (allowed: ${allowed.join(', ')})`
            : '';
        return { path: [...path, key], message: `unknown key ${JSON.stringify(key)}${hint}` };
      });
    }
    case 'invalid_key': {
      const kind = path[0] === 'sinks' ? 'sink' : path[0] === 'sources' ? 'source' : 'key';
      const key = path[path.length - 1];
      return [
        {
          path,
          message: `${kind} name ${JSON.stringify(String(key))} is not allowed: use 1 to 64 letters, digits, _ or -`,
        },
      ];
    }
    case 'custom': {
      // A key that only one variant of a section requires: worded like zod's own missing-key issue.
      if ((issue.params as { missing?: unknown } | undefined)?.missing === true && value === undefined) {
        const message = ctx.isWritten(path) ? 'must have a value' : issue.message;
        return [{ path, message }];
      }
      const fix = (issue.params as { fix?: unknown } | undefined)?.fix;
      const withFix =
        typeof fix === 'string' && ctx.isShowable(path) ? `${issue.message}: write ${fix}` : issue.message;
      return [{ path, message: withFix }];
    }
    default:
      return [{ path, message: isOwnMessage(issue.message) ? issue.message : lowerFirst(issue.message) }];
  }
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** The allowed key a typo most likely meant, if any is close enough to be a plausible slip. */
export function closest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const tolerance = Math.max(1, Math.floor(key.length / 3));
  return bestDistance <= tolerance ? best : undefined;
}

// ---------------------------------------------------------------------------------------------------
// Walking a zod schema along a config path, to list the keys an object allows.

interface SchemaDef {
  type: string;
  shape?: Record<string, z.core.$ZodType>;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
  element?: z.core.$ZodType;
  options?: z.core.$ZodType[];
  discriminator?: string;
  values?: unknown[];
  getter?: () => z.core.$ZodType;
}

function defOf(schema: z.core.$ZodType): SchemaDef {
  const def: unknown = schema._zod.def;
  return def as SchemaDef;
}

/** Strips wrappers (optional, default, transform pipes...) and picks the union member the data selects. */
function unwrap(schema: z.core.$ZodType, data: unknown): z.core.$ZodType {
  for (let depth = 0; depth < 32; depth++) {
    const def = defOf(schema);
    if (def.innerType) schema = def.innerType;
    else if (def.type === 'pipe' && def.in) schema = def.in;
    else if (def.type === 'lazy' && def.getter) schema = def.getter();
    else if (def.type === 'union' && def.options?.[0]) {
      const key = def.discriminator ?? 'type';
      const type =
        typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[key] : undefined;
      schema =
        def.options.find((option) => {
          const typeSchema = defOf(unwrap(option, undefined)).shape?.[key];
          return typeSchema !== undefined && (defOf(typeSchema).values ?? []).includes(type);
        }) ?? def.options[0];
    } else break;
  }
  return schema;
}

export function allowedKeysAt(
  root: z.core.$ZodType,
  rootData: unknown,
  path: readonly PathSegment[],
): string[] {
  let schema: z.core.$ZodType | undefined = root;
  let data = rootData;
  for (const segment of path) {
    schema = unwrap(schema, data);
    const def = defOf(schema);
    data = typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[segment] : undefined;
    if (def.type === 'object') schema = def.shape?.[segment];
    else if (def.type === 'record') schema = def.valueType;
    else if (def.type === 'array') schema = def.element;
    else schema = undefined;
    if (!schema) return [];
  }
  const shape = defOf(unwrap(schema, data)).shape;
  return shape ? Object.keys(shape) : [];
}

// ---------------------------------------------------------------------------------------------------
// Field marks: `.meta({ secret: true })` and `.meta({ path: true })` on a schema, found along a path.

export interface FieldMarks {
  secret: boolean;
  path: boolean;
  /** A secret URL whose printable form keeps everything but its password (a proxy URL). */
  url_password: boolean;
}

function marksOf(schema: z.core.$ZodType): Partial<FieldMarks> {
  const meta = z.globalRegistry.get(schema) as Partial<FieldMarks> | undefined;
  return meta ?? {};
}

/**
 * The marks of the field at `path`. With `data`, union members are picked by their discriminator as the
 * data says; without it (or when the data picks none), a mark on any member counts, so a secret is
 * never missed.
 */
export function fieldMarksAt(
  root: z.core.$ZodType,
  path: readonly PathSegment[],
  data?: unknown,
): FieldMarks {
  const out: FieldMarks = { secret: false, path: false, url_password: false };
  const visit = (schema: z.core.$ZodType, at: number, value: unknown, depth: number): void => {
    if (depth > 64) return;
    const marks = marksOf(schema);
    if (at === path.length) {
      out.secret ||= marks.secret === true;
      out.path ||= marks.path === true;
      out.url_password ||= marks.url_password === true;
    }
    const def = defOf(schema);
    if (def.innerType) return visit(def.innerType, at, value, depth + 1);
    if (def.type === 'pipe' && def.in) return visit(def.in, at, value, depth + 1);
    if (def.type === 'lazy' && def.getter) return visit(def.getter(), at, value, depth + 1);
    if (def.type === 'union' && def.options) {
      const key = def.discriminator ?? 'type';
      const selector = isObject(value) ? value[key] : undefined;
      const chosen = def.options.filter((option) =>
        (defOf(defOf(unwrap(option, undefined)).shape?.[key] ?? option).values ?? []).includes(selector),
      );
      for (const option of chosen.length > 0 ? chosen : def.options) visit(option, at, value, depth + 1);
      return;
    }
    if (at === path.length) return;
    const segment = path[at] as PathSegment;
    const child = isObject(value) ? value[segment] : undefined;
    if (def.type === 'object') {
      const next = def.shape?.[segment];
      if (next) visit(next, at + 1, child, depth + 1);
    } else if (def.type === 'record' && def.valueType) visit(def.valueType, at + 1, child, depth + 1);
    else if (def.type === 'array' && def.element) visit(def.element, at + 1, child, depth + 1);
  };
  visit(root, 0, data, 0);
  return out;
}

/** Calls `each` for every string in `data` whose field carries a mark, with the value's path. */
export function forEachMarked(
  root: z.core.$ZodType,
  data: unknown,
  mark: keyof FieldMarks,
  each: (path: PathSegment[], value: string) => void,
): void {
  const walk = (value: unknown, path: PathSegment[]): void => {
    if (typeof value === 'string') {
      if (fieldMarksAt(root, path, data)[mark]) each(path, value);
    } else if (Array.isArray(value)) value.forEach((item, i) => walk(item, [...path, i]));
    else if (isObject(value)) for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
  };
  walk(data, []);
}

function isObject(value: unknown): value is Record<string | number, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
