import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  LineCounter,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  parseDocument,
  type Document,
  type Node as YamlNode,
  type Scalar,
} from 'yaml';
import { ConfigError, formatPath, type ConfigProblem, type PathSegment } from './errors.js';
import { interpolate } from './interpolate.js';
import { allowedKeysAt, fieldMarksAt, forEachMarked, issueToMessages } from './messages.js';
import { ConfigSchema, NAME_PATTERN, type Config } from './schema.js';

export interface ParseOptions {
  /** Variables for ${VAR} interpolation; process.env when absent. */
  env?: NodeJS.ProcessEnv;
  /**
   * Directory that relative paths in the config (data_dir, file sink paths, tls files, script) are
   * resolved against: the config file's own directory, so a config means the same thing whatever the
   * working directory of the process that reads it.
   */
  baseDir: string;
  /** Shown with the problems; not read. */
  fileName?: string;
  /**
   * `unresolved`: secret values keep their `${VAR}` text, read from no variable, so commands that never
   * contact Okta (`state ...`) load without the token set. Such a config must never reach a client.
   * `state`: as `unresolved`, except that secrets under `state` are required (the state database's URL)
   * and other secrets whose variables are all set are resolved (a postgres sink's URL, often the same).
   * Default `required`.
   */
  secrets?: 'required' | 'unresolved' | 'state';
}

/** Reads, interpolates and validates a config file. Throws ConfigError listing every problem. */
export async function loadConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  options: Pick<ParseOptions, 'secrets'> = {},
): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '', line: null, message: unreadable(file, err) }], file);
  }
  return parseConfig(text, { env, baseDir: dirname(resolve(file)), fileName: file, ...options });
}

function unreadable(file: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const reason =
    code === 'ENOENT'
      ? 'the file does not exist'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'it is a directory'
          : (code ?? (err instanceof Error ? err.message : String(err)));
  return `cannot read the config file ${file}: ${reason}`;
}

/** Parses config text. Throws ConfigError listing every problem found. */
export function parseConfig(text: string, options: ParseOptions): Config {
  const env = options.env ?? process.env;
  const lineCounter = new LineCounter();
  // The core schema keeps unquoted timestamps (start_from) as strings, even under a %YAML 1.1 directive.
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, schema: 'core' });
  const located = new Locator(doc, lineCounter);

  // A document with syntax errors has no reliable structure: report those alone.
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((error) => located.yamlError(error.code, error.message, error.pos[0])),
      options.fileName,
    );
  }
  if (doc.contents === null) {
    throw new ConfigError(
      [{ path: '', line: null, message: 'the config is empty; it needs at least sources and sinks' }],
      options.fileName,
    );
  }

  const problems: ConfigProblem[] = [];
  const add = (path: readonly PathSegment[], message: string): void => {
    problems.push({ path: formatPath(path), line: located.line(path), message });
  };

  // Secret marks live in the schema; the raw document picks the sink type whose marks apply.
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch {
    raw = undefined;
  }
  const isSecret = (path: readonly PathSegment[]) => fieldMarksAt(ConfigSchema, path, raw).secret;
  const interpolation = interpolateDocument(doc, env, isSecret, options.secrets ?? 'required');
  for (const { path, message } of interpolation.problems) add(path, message);

  let data: unknown;
  try {
    data = dropEmptyValues(doc.toJS({ maxAliasCount: 100 }));
  } catch (err) {
    add([], err instanceof Error ? err.message : String(err));
    throw finish(problems, interpolation.secrets, options.fileName);
  }

  const context = {
    valueAt: (path: readonly PathSegment[]) => valueAt(data, path),
    isWritten: (path: readonly PathSegment[]) => located.node(path) !== undefined,
    isShowable: (path: readonly PathSegment[]) => {
      if (fieldMarksAt(ConfigSchema, path, data).secret) return false;
      const node = located.node(path);
      return node === undefined || !interpolation.variables.has(node);
    },
    allowedKeys: (path: readonly PathSegment[]) => allowedKeysAt(ConfigSchema, data, path),
  };

  // jitless: zod would otherwise generate and compile a fast path for every object schema on this first
  // and only parse, which costs the short commands (validate, state) more than the parse itself.
  const result = ConfigSchema.safeParse(data, { jitless: true });
  if (!result.success) {
    const failed = interpolation.problems.map((p) => formatPath(p.path));
    for (const issue of result.error.issues) {
      for (const { path, message } of issueToMessages(issue, context)) {
        // A value whose interpolation failed is already reported; its validation errors are only echoes.
        if (failed.includes(formatPath(path))) continue;
        const subject = path.length === 0 ? 'the config ' : '';
        add(path, subject + message + origin(located.node(path), interpolation.variables));
      }
    }
  }
  for (const { path, message } of crossCheck(data, options.baseDir, context.isShowable)) {
    add(path, message + origin(located.node(path), interpolation.variables));
  }

  if (problems.length > 0 || !result.success) throw finish(problems, interpolation.secrets, options.fileName);
  return resolvePaths(result.data, options.baseDir);
}

/** Names where an interpolated value came from, since the value itself is not shown. */
function origin(node: YamlNode | undefined, variables: WeakMap<YamlNode, string[]>): string {
  const names = node === undefined ? undefined : variables.get(node);
  if (!names || names.length === 0) return '';
  return names.length === 1
    ? ` (from environment variable ${names[0]})`
    : ` (from environment variables ${names.join(', ')})`;
}

function finish(problems: ConfigProblem[], secrets: Set<string>, fileName: string | undefined): ConfigError {
  const seen = new Set<string>();
  const unique = problems.filter((p) => {
    const key = `${p.path}\n${p.line}\n${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  // Messages are built not to contain values; this is the second line of defence for secrets.
  const scrubbed = unique.map((p) => ({ ...p, message: scrub(p.message, secrets) }));
  const ordered = scrubbed
    .map((p, index) => ({ p, index }))
    .sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || a.index - b.index)
    .map(({ p }) => p);
  return new ConfigError(ordered, fileName);
}

function scrub(message: string, secrets: Set<string>): string {
  let out = message;
  for (const secret of secrets) out = out.split(secret).join('[redacted]');
  return out;
}

// ---------------------------------------------------------------------------------------------------
// YAML document access

function keyOf(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

/** Finds nodes and their lines for config paths. */
class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
  ) {}

  /** The value node at a path (through aliases); undefined when the path does not exist. */
  node(path: readonly PathSegment[]): YamlNode | undefined {
    return this.walk(path).node;
  }

  /** Line of the key at a path, or of the nearest parent that exists; null for the whole document. */
  line(path: readonly PathSegment[]): number | null {
    return this.walk(path).line;
  }

  yamlError(code: string, message: string, offset: number): ConfigProblem {
    const line = this.lineCounter.linePos(offset).line;
    if (code === 'DUPLICATE_KEY') {
      const path = this.pathAt(offset);
      const first = path === null ? null : this.line(path);
      return {
        path: path === null ? '' : formatPath(path),
        line,
        message:
          first !== null && first !== line
            ? `duplicate key; it is already set on line ${first}`
            : 'duplicate key',
      };
    }
    if (code === 'MULTIPLE_DOCS') {
      return {
        path: '',
        line,
        message: 'the file must hold a single YAML document; remove the second "---"',
      };
    }
    // yaml appends "at line N, column M:" and an excerpt of the file, which could show a secret.
    const summary = (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    return { path: '', line, message: `YAML syntax error: ${summary}` };
  }

  private lineOf(node: unknown): number | null {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? this.lineCounter.linePos(range[0]).line : null;
  }

  private resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  private walk(path: readonly PathSegment[]): { node: YamlNode | undefined; line: number | null } {
    let node: unknown = this.doc.contents;
    let line: number | null = null;
    for (const segment of path) {
      node = this.resolve(node);
      if (isMap(node)) {
        const pair = node.items.find((p) => keyOf(p.key) === String(segment));
        if (!pair) return { node: undefined, line };
        line = this.lineOf(pair.key) ?? this.lineOf(pair.value) ?? line;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === 'number') {
        const item: unknown = node.items[segment];
        if (item === undefined) return { node: undefined, line };
        line = this.lineOf(item) ?? line;
        node = item;
      } else {
        return { node: undefined, line };
      }
    }
    return { node: (this.resolve(node) as YamlNode | null) ?? undefined, line };
  }

  /** The path of the key that starts at an offset (used to name a duplicated key). */
  private pathAt(offset: number): PathSegment[] | null {
    const search = (node: unknown, path: PathSegment[]): PathSegment[] | null => {
      if (isMap(node)) {
        for (const pair of node.items) {
          const key = keyOf(pair.key);
          const keyRange = (pair.key as { range?: [number, number, number] } | null)?.range;
          if (keyRange && keyRange[0] <= offset && offset < keyRange[2]) return [...path, key];
          const found = search(pair.value, [...path, key]);
          if (found) return found;
        }
      } else if (isSeq(node)) {
        for (const [index, item] of node.items.entries()) {
          const found = search(item, [...path, index]);
          if (found) return found;
        }
      }
      return null;
    };
    return search(this.doc.contents, []);
  }
}

interface DocumentInterpolation {
  problems: { path: PathSegment[]; message: string }[];
  /** Scalars whose value came (partly) from the environment, with the variable names. */
  variables: WeakMap<YamlNode, string[]>;
  /** Secret values, to scrub from messages should one ever reach a message. */
  secrets: Set<string>;
}

// Short strings would scrub ordinary words out of messages; real tokens and passphrases are longer.
const MIN_SCRUBBED_LENGTH = 4;

/**
 * Replaces ${VAR} in every string scalar of the document, in place, so that aliases share the result
 * and line lookups still work. A plain (unquoted) scalar that was only a reference takes the type its
 * text has in YAML, so `interval_secs: ${INTERVAL}` is a number just as `interval_secs: 120` is; a quoted
 * one stays a string. Secrets always stay strings.
 */
function interpolateDocument(
  doc: Document,
  env: NodeJS.ProcessEnv,
  isSecret: (path: readonly PathSegment[]) => boolean,
  secrets: 'required' | 'unresolved' | 'state',
): DocumentInterpolation {
  const out: DocumentInterpolation = { problems: [], variables: new WeakMap(), secrets: new Set() };
  const visit = (node: unknown, path: PathSegment[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) visit(pair.value, [...path, keyOf(pair.key)]);
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => visit(item, [...path, index]));
    } else if (isScalar(node)) {
      const secret = isSecret(path);
      if (secret && secrets === 'unresolved') return;
      if (secret && secrets === 'state' && path[0] !== 'state') {
        if (typeof node.value !== 'string' || interpolate(node.value, env).problems.length > 0) return;
      }
      interpolateScalar(node, path, env, out, secret);
    }
  };
  visit(doc.contents, []);
  return out;
}

function interpolateScalar(
  node: Scalar,
  path: PathSegment[],
  env: NodeJS.ProcessEnv,
  out: DocumentInterpolation,
  secret: boolean,
): void {
  // An explicit !!timestamp tag would otherwise reach validation as a Date.
  if (node.value instanceof Date) node.value = node.source;
  if (typeof node.value !== 'string') return;
  if (node.value.includes('$')) {
    const result = interpolate(node.value, env);
    node.value = result.value;
    for (const message of result.problems) out.problems.push({ path, message });
    if (result.variables.length > 0) {
      out.variables.set(node, result.variables);
      if (secret) {
        for (const name of result.variables) {
          const value = env[name];
          if (value !== undefined && value.length >= MIN_SCRUBBED_LENGTH) out.secrets.add(value);
        }
      } else if (node.type === 'PLAIN') {
        node.value = plainScalarValue(result.value);
      }
    }
  }
  if (secret && typeof node.value === 'string' && node.value.length >= MIN_SCRUBBED_LENGTH) {
    out.secrets.add(node.value);
  }
}

/** YAML 1.2 core schema typing of booleans and decimal numbers; anything else stays a string. */
function plainScalarValue(text: string): string | number | boolean {
  if (/^(true|True|TRUE)$/.test(text)) return true;
  if (/^(false|False|FALSE)$/.test(text)) return false;
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(text)) return Number(text);
  return text;
}

/** A key written without a value (`tls:` with everything below commented out) counts as absent. */
function dropEmptyValues(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropEmptyValues);
  if (typeof value !== 'object' || value === null || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (item !== null) out[key] = dropEmptyValues(item);
  }
  return out;
}

function valueAt(data: unknown, path: readonly PathSegment[]): unknown {
  let value = data;
  for (const segment of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------------
// Rules across sections. They read the raw input, so they are reported together with schema problems.

function crossCheck(
  data: unknown,
  baseDir: string,
  isShowable: (path: readonly PathSegment[]) => boolean,
): { path: PathSegment[]; message: string }[] {
  const problems: { path: PathSegment[]; message: string }[] = [];
  if (!isRecord(data)) return problems;
  // Badly named sources are reported by the schema; listing them here again would only add noise.
  const sources = isRecord(data.sources)
    ? Object.keys(data.sources).filter((n) => NAME_PATTERN.test(n))
    : null;
  const sinks = isRecord(data.sinks) ? data.sinks : null;
  if (!sinks) return problems;

  const used = new Set<string>();
  const files = new Map<string, string>();
  for (const [name, sink] of Object.entries(sinks)) {
    if (!isRecord(sink)) continue;
    if (Array.isArray(sink.inputs)) {
      const seen = new Set<string>();
      sink.inputs.forEach((input, index) => {
        if (typeof input !== 'string' || input === '') return;
        const path = ['sinks', name, 'inputs', index];
        const shown = isShowable(path) ? ` ${JSON.stringify(input)}` : '';
        if (seen.has(input)) {
          problems.push({ path, message: `lists source${shown} twice` });
        } else if (sources && !sources.includes(input)) {
          const known = sources.length > 0 ? sources.join(', ') : 'none';
          problems.push({ path, message: `unknown source${shown} (known: ${known})` });
        }
        seen.add(input);
        used.add(input);
      });
    }
    if (sink.type === 'file' && typeof sink.path === 'string' && sink.path !== '') {
      const file = resolve(baseDir, sink.path);
      const first = files.get(file);
      if (first === undefined) files.set(file, name);
      else {
        problems.push({
          path: ['sinks', name, 'path'],
          message: `is the same file as sinks.${first}.path; two sinks cannot append to one file`,
        });
      }
    }
  }
  // A local file cannot follow a source to another host: after a takeover, the events before it would
  // sit on the old replica's disk and the checkpoint would point past them.
  if (isRecord(data.state) && data.state.backend === 'postgres') {
    for (const [name, sink] of Object.entries(sinks)) {
      if (isRecord(sink) && (sink.type === 'file' || sink.type === 'stdout')) {
        problems.push({
          path: ['sinks', name, 'type'],
          message:
            `a ${sink.type} sink cannot be used with state.backend: postgres: a source moves between ` +
            'replicas, and a local file or stream cannot follow it to another host (use a network sink)',
        });
      }
    }
  }
  if (Object.keys(sinks).length > 0) {
    for (const name of sources ?? []) {
      if (!used.has(name)) {
        problems.push({
          path: ['sources', name],
          message: `no sink takes this source as input; add ${name} to a sink's inputs or remove the source`,
        });
      }
    }
  }
  return problems;
}

/** Resolves every field marked `.meta({ path: true })` against the config file's directory. */
function resolvePaths(config: Config, baseDir: string): Config {
  const copy = structuredClone(config);
  forEachMarked(ConfigSchema, copy, 'path', (path, value) => {
    let parent: unknown = copy;
    for (const segment of path.slice(0, -1)) parent = (parent as Record<PathSegment, unknown>)[segment];
    (parent as Record<PathSegment, unknown>)[path[path.length - 1] as PathSegment] = resolve(baseDir, value);
  });
  return copy;
}
