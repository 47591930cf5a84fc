/*
 * Environment interpolation for config values. It runs on string values after YAML parsing, never on
 * the raw text: a `#`, `:` or newline inside a variable must not be able to change the document's
 * structure (turn a value into a comment, a key, or a new setting).
 *
 *   ${VAR}            value of VAR; a problem when VAR is unset (an empty VAR gives "")
 *   ${VAR:-default}   value of VAR, or `default` when VAR is unset or empty
 *   $$                a literal $
 *   $ followed by anything else stays a literal $ (passwords and Lua patterns contain them)
 */

const VARIABLE_REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

export interface Interpolated {
  value: string;
  /** Names of the variables the value refers to, in order of appearance, without repeats. */
  variables: string[];
  /** One sentence per problem. They never contain the value or any variable's value. */
  problems: string[];
}

export function interpolate(text: string, env: NodeJS.ProcessEnv): Interpolated {
  const variables: string[] = [];
  const problems: string[] = [];
  let value = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar < 0) {
      value += text.slice(i);
      break;
    }
    value += text.slice(i, dollar);
    const next = text[dollar + 1];
    if (next === '$') {
      value += '$';
      i = dollar + 2;
      continue;
    }
    if (next !== '{') {
      value += '$';
      i = dollar + 1;
      continue;
    }
    const close = text.indexOf('}', dollar + 2);
    if (close < 0) {
      problems.push('has a "${" without a closing "}"; write $$ for a literal $');
      value += text.slice(dollar);
      break;
    }
    const match = VARIABLE_REFERENCE.exec(text.slice(dollar + 2, close));
    i = close + 1;
    if (!match) {
      problems.push(
        'has an invalid ${...} reference: write ${NAME} or ${NAME:-default}, where NAME is letters, digits and _ not starting with a digit; write $$ for a literal $',
      );
      continue;
    }
    const name = match[1] ?? '';
    const fallback = match[2];
    if (!variables.includes(name)) variables.push(name);
    const set = env[name];
    if (fallback !== undefined) {
      value += set === undefined || set === '' ? fallback : set;
    } else if (set === undefined) {
      problems.push(`environment variable ${name} is not set; export it or write \${${name}:-default}`);
    } else {
      value += set;
    }
  }
  return { value, variables, problems };
}
