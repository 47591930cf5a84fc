import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigProblem } from '../../../config/errors.js';
import { parseConfig } from '../../../config/load.js';
import { redactConfig } from '../../../config/redact.js';

const PASS = 'key-pass-Secret-42';

function config(auth: string[], env: NodeJS.ProcessEnv = { OKTA_KEY_PASS: PASS }) {
  const text = [
    'sources:',
    '  okta:',
    '    type: okta',
    '    domain: company.okta.com',
    '    auth:',
    ...auth.map((l) => `      ${l}`),
    'sinks:',
    '  console: { type: stdout, inputs: [okta] }',
    '',
  ].join('\n');
  return parseConfig(text, { env, baseDir: '/etc/oktail', fileName: 'oktail.yaml' });
}

function problems(auth: string[], env?: NodeJS.ProcessEnv): readonly ConfigProblem[] {
  try {
    config(auth, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected problems');
}

const OAUTH = ['strategy: oauth2', 'client_id: 0oa1b2c3d4e5f6g7h8i9', 'private_key_file: keys/app.pem'];

describe('auth.strategy oauth2', () => {
  it('fills in the defaults and resolves the key file against the config directory', () => {
    expect(config(OAUTH).sources.okta?.auth).toEqual({
      strategy: 'oauth2',
      client_id: '0oa1b2c3d4e5f6g7h8i9',
      private_key_file: '/etc/oktail/keys/app.pem',
      scopes: ['okta.logs.read'],
      dpop: 'auto',
    });
  });

  it('takes every key', () => {
    const auth = config([
      ...OAUTH,
      'private_key_pass: ${OKTA_KEY_PASS}',
      'key_id: my-kid',
      'scopes: [okta.logs.read, okta.users.read]',
      'dpop: false',
    ]).sources.okta?.auth;
    expect(auth).toMatchObject({ private_key_pass: PASS, key_id: 'my-kid', dpop: false });
  });

  it('requires client_id and private_key_file, naming them', () => {
    expect(problems(['strategy: oauth2'])).toEqual([
      { path: 'sources.okta.auth.client_id', line: 5, message: 'is required with auth.strategy oauth2' },
      {
        path: 'sources.okta.auth.private_key_file',
        line: 5,
        message: 'is required with auth.strategy oauth2',
      },
    ]);
  });

  it("flags the other strategy's keys instead of ignoring them", () => {
    expect(problems([...OAUTH, 'token: abc']).map((p) => `${p.path}: ${p.message}`)).toEqual([
      'sources.okta.auth.token: is used only with auth.strategy bearer',
    ]);
    expect(problems(['token: abc', 'client_id: 0oa1']).map((p) => `${p.path}: ${p.message}`)).toEqual([
      'sources.okta.auth.client_id: is used only with auth.strategy oauth2',
    ]);
  });

  it('takes the passphrase from a file, but not from both places', () => {
    const auth = config([...OAUTH, 'private_key_pass_file: /etc/oktail/secrets/okta.private_key_pass'])
      .sources.okta?.auth;
    expect(auth).toMatchObject({ private_key_pass_file: '/etc/oktail/secrets/okta.private_key_pass' });
    expect(
      problems([...OAUTH, 'private_key_pass: ${OKTA_KEY_PASS}', 'private_key_pass_file: /p']).map(
        (p) => `${p.path}: ${p.message}`,
      ),
    ).toEqual(['sources.okta.auth.private_key_pass_file: cannot be set together with auth.private_key_pass']);
    expect(problems(['token: abc', 'private_key_pass_file: /p'])[0]?.message).toBe(
      'is used only with auth.strategy oauth2',
    );
  });

  it('checks dpop and scopes', () => {
    expect(problems([...OAUTH, 'dpop: sometimes'])[0]?.path).toBe('sources.okta.auth.dpop');
    expect(problems([...OAUTH, 'scopes: []'])[0]?.message).toBe('must list at least one scope');
  });

  it('never shows the passphrase: not in messages, not in validate --print', () => {
    const messages = problems([...OAUTH, 'private_key_pass: ${OKTA_KEY_PASS}', 'dpop: sometimes']);
    expect(JSON.stringify(messages)).not.toContain(PASS);
    const printed = JSON.stringify(redactConfig(config([...OAUTH, 'private_key_pass: ${OKTA_KEY_PASS}'])));
    expect(printed).not.toContain(PASS);
    expect(printed).toContain('"private_key_pass":"[redacted]"');
  });
});
