import { generateKeyPairSync } from 'node:crypto';
import { access, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigFile, fieldOf, type SourceForm } from './config-file.js';

const BUILTIN = '-- built-in\nfunction initial_state() end\n';

let dir: string;
let file: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oktail-console-'));
  file = join(dir, 'oktail.yaml');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function form(overrides: Partial<SourceForm> = {}): SourceForm {
  return {
    name: 'okta',
    domain: 'company.okta.com',
    interval_secs: '60',
    start_from: '',
    strategy: 'bearer',
    token: '00abcdefghijklmnop',
    header: 'Authorization',
    prefix: 'SSWS ',
    client_id: '',
    private_key_file: '',
    private_key_pass: '',
    key_id: '',
    scopes: '',
    dpop: 'auto',
    tls_enabled: false,
    ca_file: '',
    crt_file: '',
    key_file: '',
    key_pass: '',
    verify_certificate: true,
    verify_hostname: true,
    script: BUILTIN,
    sinks: ['archive'],
    ...overrides,
  };
}

const paths = () => ({ dataDir: join(dir, 'data'), scriptProblems: async () => [], builtinScript: BUILTIN });

const START = [
  '# my collector',
  'data_dir: data # state lives here',
  'console: {}',
  'sources: {}',
  'sinks:',
  '  # where events go',
  '  archive:',
  '    type: file',
  '    path: out.ndjson',
  '    inputs: []',
  '  other:',
  '    type: stdout',
  '    inputs: []',
  '',
].join('\n');

describe('ConfigFile', () => {
  it('adds a source key by key, keeping comments, with the token in a mode-0600 file', async () => {
    await writeFile(file, START);
    const config = new ConfigFile({ file, env: {} });
    const result = await config.save(form(), 'create', paths());
    expect(result.ok).toBe(true);
    const text = await readFile(file, 'utf8');
    expect(text).toContain('# my collector');
    expect(text).toContain('data_dir: data # state lives here');
    expect(text).toContain('# where events go');
    expect(text).not.toContain('00abcdefghijklmnop');
    expect(text).toContain('token_file: data/secrets/okta.token');
    expect(text).toMatch(/archive:\n {4}type: file\n {4}path: out.ndjson\n {4}inputs: \[ okta \]/);
    expect(text).toMatch(/other:\n {4}type: stdout\n {4}inputs: \[\]/);
    // Defaults are not written; the built-in script is not named.
    expect(text).not.toContain('header');
    expect(text).not.toContain('prefix');
    expect(text).not.toContain('script');
    const secret = join(dir, 'data', 'secrets', 'okta.token');
    expect(await readFile(secret, 'utf8')).toBe('00abcdefghijklmnop\n');
    expect((await stat(secret)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'data', 'secrets'))).mode & 0o777).toBe(0o700);
    // The loader reads it back as a valid config.
    const loaded = await config.load();
    expect(loaded.sources.okta).toMatchObject({ domain: 'company.okta.com', interval_secs: 60 });
  });

  it('maps every problem to its field in the loader words and writes nothing', async () => {
    await writeFile(file, START);
    const config = new ConfigFile({ file, env: {} });
    const result = await config.save(
      form({ domain: 'https://company.okta.com', interval_secs: '5', token: 'SSWS 00abc', sinks: [] }),
      'create',
      paths(),
    );
    expect(result).toEqual({
      ok: false,
      problems: expect.arrayContaining([
        { field: 'domain', message: 'remove the scheme: write company.okta.com' },
        { field: 'interval_secs', message: 'must be between 10 and 86401, got 5' },
        { field: 'token', message: 'must be the token alone; auth.prefix adds the "SSWS " in front of it' },
        {
          field: 'sinks',
          message: "no sink takes this source as input; add okta to a sink's inputs or remove the source",
        },
      ]) as unknown,
    });
    expect(await readFile(file, 'utf8')).toBe(START);
    // The secret is in no problem.
    expect(JSON.stringify(result)).not.toContain('00abc');
  });

  it('edits only what changed, keeps a ${VAR} token, and removes the source from every sink', async () => {
    await writeFile(
      file,
      START.replace(
        'sources: {}',
        [
          'sources:',
          '  okta:',
          '    type: okta',
          '    domain: company.okta.com # the org',
          '    interval_secs: 120',
          '    retry: { max_backoff_secs: 30 }',
          '    auth:',
          '      token: ${OKTA_API_TOKEN}',
        ].join('\n'),
      ).replace('    inputs: []\n  other', '    inputs: [okta]\n  other'),
    );
    const config = new ConfigFile({ file, env: { OKTA_API_TOKEN: '00tokenvalue' } });
    const result = await config.save(form({ token: '', interval_secs: '30' }), 'edit', paths());
    expect(result).toMatchObject({ ok: true, changed: ['interval_secs'] });
    const text = await readFile(file, 'utf8');
    expect(text).toContain('domain: company.okta.com # the org');
    expect(text).toContain('interval_secs: 30');
    expect(text).toContain('retry: { max_backoff_secs: 30 }');
    expect(text).toContain('token: ${OKTA_API_TOKEN}');

    await config.remove('okta', join(dir, 'data'));
    const after = await readFile(file, 'utf8');
    expect(after).not.toContain('okta:');
    expect(after).toMatch(/archive:\n {4}type: file\n {4}path: out.ndjson\n {4}inputs: \[\]/);
  });

  it('checks a changed script and reports its problems on the script field', async () => {
    await writeFile(file, START);
    const config = new ConfigFile({ file, env: {} });
    const result = await config.save(form({ script: 'broken(' }), 'create', {
      ...paths(),
      scriptProblems: async (path) => [
        `line 1: ${(await readFile(path, 'utf8')) === 'broken(' ? 'syntax' : '?'}`,
      ],
    });
    expect(result).toEqual({ ok: false, problems: [{ field: 'script', message: 'line 1: syntax' }] });
    expect(await readFile(file, 'utf8')).toBe(START);
  });
});

describe('ConfigFile with OAuth 2.0', () => {
  const PASS = 'pass-$ecret-phrase';
  /** An encrypted PKCS#8 key, as an app's key would be, written beside the config. */
  async function keyFile(): Promise<string> {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const path = join(dir, 'app.pem');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASS });
    await writeFile(path, pem as string, { mode: 0o600 });
    return path;
  }
  const oauth = (key: string, overrides: Partial<SourceForm> = {}) =>
    form({
      strategy: 'oauth2',
      token: '',
      client_id: '0oa1b2c3d4e5f6g7h8i9',
      private_key_file: key,
      private_key_pass: PASS,
      ...overrides,
    });

  it('writes the OAuth keys, the passphrase in a mode-0600 file, and reads them back without the secret', async () => {
    await writeFile(file, START);
    const key = await keyFile();
    const config = new ConfigFile({ file, env: {} });
    const result = await config.save(
      oauth(key, { key_id: 'kid-1', scopes: 'okta.logs.read, okta.users.read', dpop: 'false' }),
      'create',
      paths(),
    );
    expect(result).toMatchObject({ ok: true });
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(PASS);
    expect(text).toContain('strategy: oauth2');
    expect(text).toContain('client_id: 0oa1b2c3d4e5f6g7h8i9');
    expect(text).toContain(`private_key_file: ${key}`);
    expect(text).toContain('private_key_pass_file: data/secrets/okta.private_key_pass');
    expect(text).toContain('key_id: kid-1');
    expect(text).toContain('scopes: [ okta.logs.read, okta.users.read ]');
    expect(text).toContain('dpop: false');
    expect(text).not.toMatch(/token|header|prefix/);
    const secret = join(dir, 'data', 'secrets', 'okta.private_key_pass');
    expect(await readFile(secret, 'utf8')).toBe(`${PASS}\n`);
    expect((await stat(secret)).mode & 0o777).toBe(0o600);

    const loaded = await config.load();
    expect(loaded.sources.okta?.auth).toMatchObject({
      strategy: 'oauth2',
      private_key_pass_file: secret,
      scopes: ['okta.logs.read', 'okta.users.read'],
      dpop: false,
    });
    const values = await config.formValues('okta', loaded, BUILTIN);
    expect(values).toMatchObject({
      strategy: 'oauth2',
      client_id: '0oa1b2c3d4e5f6g7h8i9',
      private_key_file: key,
      private_key_pass_set: true,
      key_id: 'kid-1',
      scopes: 'okta.logs.read okta.users.read',
      dpop: 'false',
      token_set: false,
    });
    expect(JSON.stringify(values)).not.toContain(PASS);

    // Saved again without a new passphrase: the file is kept, read by the key check, and defaults stay out.
    const again = await config.save(
      oauth(key, { private_key_pass: '', scopes: 'okta.logs.read', dpop: 'auto' }),
      'edit',
      paths(),
    );
    expect(again).toMatchObject({ ok: true, changed: ['auth.dpop', 'auth.key_id', 'auth.scopes'] });
    const text2 = await readFile(file, 'utf8');
    expect(text2).toContain('private_key_pass_file: data/secrets/okta.private_key_pass');
    expect(text2).toContain('scopes: [ okta.logs.read ]');
    // A key written before keeps being written, even at its default; an emptied one goes.
    expect(text2).toContain('dpop: auto');
    expect(text2).not.toContain('key_id');
  });

  it('puts OAuth problems beside their fields in the loader words, the key check included', async () => {
    await writeFile(file, START);
    const key = await keyFile();
    const config = new ConfigFile({ file, env: {} });
    const missing = await config.save(oauth('', { client_id: '' }), 'create', paths());
    expect(missing).toEqual({
      ok: false,
      problems: expect.arrayContaining([
        { field: 'client_id', message: 'is required with auth.strategy oauth2' },
        { field: 'private_key_file', message: 'is required with auth.strategy oauth2' },
      ]) as unknown,
    });
    expect(await config.save(oauth(key, { dpop: 'sometimes', scopes: 'a"b' }), 'create', paths())).toEqual({
      ok: false,
      problems: expect.arrayContaining([
        { field: 'dpop', message: 'does not match any allowed form' },
        { field: 'scopes', message: 'must be a scope name, e.g. okta.logs.read' },
      ]) as unknown,
    });
    const wrong = await config.save(oauth(key, { private_key_pass: 'not-the-pass' }), 'create', paths());
    expect(wrong).toEqual({
      ok: false,
      problems: [
        {
          field: 'private_key_pass',
          message: `cannot load the private key in ${key}: wrong auth.private_key_pass, or a damaged key`,
        },
      ],
    });
    expect(await readFile(file, 'utf8')).toBe(START);
    expect(JSON.stringify([missing, wrong])).not.toMatch(/not-the-pass|\$ecret/);
  });

  it("switches strategies both ways, removing the other strategy's keys and secret file", async () => {
    await writeFile(file, START);
    const key = await keyFile();
    const config = new ConfigFile({ file, env: {} });
    const secrets = join(dir, 'data', 'secrets');
    expect(await config.save(form({ header: 'X-Auth', prefix: 'Bearer ' }), 'create', paths())).toMatchObject(
      {
        ok: true,
      },
    );
    await access(join(secrets, 'okta.token'));

    expect(await config.save(oauth(key), 'edit', paths())).toMatchObject({ ok: true });
    const oauthText = await readFile(file, 'utf8');
    expect(oauthText).toContain('strategy: oauth2');
    expect(oauthText).not.toMatch(/token_file|header|prefix/);
    await expect(access(join(secrets, 'okta.token'))).rejects.toThrow();
    expect((await config.load()).sources.okta?.auth.strategy).toBe('oauth2');

    // Back to bearer without a token: the token is required again, and nothing is written.
    const noToken = await config.save(form({ token: '' }), 'edit', paths());
    expect(noToken).toEqual({ ok: false, problems: [{ field: 'token', message: 'is required' }] });
    expect(await readFile(file, 'utf8')).toBe(oauthText);

    expect(await config.save(form(), 'edit', paths())).toMatchObject({ ok: true });
    const bearerText = await readFile(file, 'utf8');
    expect(bearerText).toContain('strategy: bearer');
    expect(bearerText).toContain('token_file: data/secrets/okta.token');
    expect(bearerText).not.toMatch(/client_id|private_key|scopes|dpop/);
    await expect(access(join(secrets, 'okta.private_key_pass'))).rejects.toThrow();
    expect((await config.load()).sources.okta?.auth).toMatchObject({ strategy: 'bearer', prefix: 'SSWS ' });
  });
});

describe('fieldOf', () => {
  it('places problems beside their fields, and others above the form with their path', () => {
    expect(fieldOf({ path: 'sources.okta.tls.ca_file', line: 3, message: 'x' }, 'okta')).toEqual({
      field: 'ca_file',
      message: 'x',
    });
    expect(fieldOf({ path: 'sources.okta.retry.max_backoff_secs', line: 3, message: 'x' }, 'okta')).toEqual({
      field: null,
      message: 'sources.okta.retry.max_backoff_secs: x',
    });
    expect(fieldOf({ path: 'sinks.a.inputs[0]', line: 3, message: 'x' }, 'okta')).toEqual({
      field: 'sinks',
      message: 'x',
    });
  });
});
