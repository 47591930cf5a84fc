import { OktailError } from '../core/errors.js';

export interface ConfigProblem {
  /** Dotted key path with `[i]` for list items, e.g. `sinks.archive.inputs[0]`; "" for the whole file. */
  path: string;
  /** 1-based line in the config file, or null when the problem has no place in it. */
  line: number | null;
  message: string;
}

export type PathSegment = string | number;

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (PLAIN_KEY.test(segment)) out += out === '' ? segment : `.${segment}`;
    // Keys with dots or spaces would make the path ambiguous.
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** `sources.okta.interval_secs (line 6): must be between 10 and 86401, got 5` */
export function formatProblem(problem: ConfigProblem): string {
  const line = problem.line === null ? '' : `line ${problem.line}`;
  if (problem.path === '') return line === '' ? problem.message : `${line}: ${problem.message}`;
  return line === ''
    ? `${problem.path}: ${problem.message}`
    : `${problem.path} (${line}): ${problem.message}`;
}

/**
 * Every problem found in a config, reported together so a user fixes them in one pass. The message is
 * the list itself, one problem per line; it never contains a secret's value.
 */
export class ConfigError extends OktailError {
  readonly problems: readonly ConfigProblem[];
  readonly fileName: string | undefined;

  constructor(problems: readonly ConfigProblem[], fileName?: string) {
    super('CONFIG_INVALID', problems.map(formatProblem).join('\n'), false);
    this.name = 'ConfigError';
    this.problems = problems;
    this.fileName = fileName;
  }
}
