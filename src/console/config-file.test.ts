import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
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
