import { describe, expect, it } from 'vitest';
import { interpolate } from './interpolate.js';

describe('interpolate', () => {
  it('replaces ${VAR} with the variable', () => {
    expect(interpolate('${HOST}:8443', { HOST: 'localhost' })).toEqual({
      value: 'localhost:8443',
      variables: ['HOST'],
      problems: [],
    });
  });

  it('uses the default when the variable is unset', () => {
    expect(interpolate('${LEVEL:-info}', {}).value).toBe('info');
  });

  it('uses the default when the variable is empty', () => {
    expect(interpolate('${LEVEL:-info}', { LEVEL: '' }).value).toBe('info');
  });

  it('prefers a set variable over the default', () => {
    expect(interpolate('${LEVEL:-info}', { LEVEL: 'debug' }).value).toBe('debug');
  });

  it('accepts an empty default', () => {
    expect(interpolate('${START:-}', {})).toEqual({ value: '', variables: ['START'], problems: [] });
  });

  it('gives an empty string for a variable that is set but empty', () => {
    expect(interpolate('${TOKEN}', { TOKEN: '' })).toEqual({ value: '', variables: ['TOKEN'], problems: [] });
  });

  it('reports an unset variable without a default by name', () => {
    expect(interpolate('${OKTA_API_TOKEN}', {}).problems).toEqual([
      'environment variable OKTA_API_TOKEN is not set; export it or write ${OKTA_API_TOKEN:-default}',
    ]);
  });

  it('turns $$ into a literal $', () => {
    expect(interpolate('pa$$word $${HOME}', { HOME: '/root' })).toEqual({
      value: 'pa$word ${HOME}',
      variables: [],
      problems: [],
    });
  });

  it('keeps a lone $ that starts no reference', () => {
    expect(interpolate('cost: 5$ or $x', {}).value).toBe('cost: 5$ or $x');
  });

  it('does not interpolate inside a variable value', () => {
    expect(interpolate('${A}', { A: '${B}', B: 'no' }).value).toBe('${B}');
  });

  it('lists each variable once, in order of appearance', () => {
    expect(interpolate('${B}${A}${B}', { A: 'a', B: 'b' }).variables).toEqual(['B', 'A']);
  });

  it('reports a reference without a closing brace', () => {
    expect(interpolate('x${HOME', {}).problems).toEqual([
      'has a "${" without a closing "}"; write $$ for a literal $',
    ]);
  });

  it('reports an invalid variable name without repeating it', () => {
    const { problems } = interpolate('${1secret}', {});
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('invalid ${...} reference');
    expect(problems[0]).not.toContain('1secret');
  });

  it('never puts a variable value in a problem', () => {
    const { problems } = interpolate('${SET}${UNSET}', { SET: 'hunter2-secret' });
    expect(problems.join('\n')).not.toContain('hunter2-secret');
  });
});
