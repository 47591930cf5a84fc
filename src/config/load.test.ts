import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OktailError } from '../core/errors.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { loadConfig, parseConfig } from './load.js';
import { SINKS } from '../sinks/index.js';

/** Sink types as messages list them; adding a sink type changes no test here. */
const SINK_TYPES = SINKS.map((s) => s.type).join(', ');

const BASE = '/srv/oktail';
const TOKEN = '00Zq3xSecretTokenValue_ab-CD';
const ENV = { OKTA_API_TOKEN: TOKEN };

const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

/** A valid config; `extra` lines go into the okta source (indent them by 4). Line 6 is the token. */
function withSource(extra: string[] = [], domain = 'company.okta.com'): string {
  return yaml(
    'sources:',
    '  okta:',
    '    type: okta',
    `    domain: ${domain}`,
    '    auth:',
    '      token: ${OKTA_API_TOKEN}',
    ...extra,
    'sinks:',
    '  console:',
    '    type: stdout',
    '    inputs: [okta]',
  );
}

function parse(text: string, env: NodeJS.ProcessEnv = ENV) {
  return parseConfig(text, { env, baseDir: BASE, fileName: 'oktail.yaml' });
}

function errorOf(text: string, env: NodeJS.ProcessEnv = ENV): ConfigError {
  try {
    parse(text, env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

function problems(text: string, env: NodeJS.ProcessEnv = ENV): ConfigProblem[] {
  return [...errorOf(text, env).problems];
}

/** The formatted lines, as a user sees them. */
function lines(text: string, env: NodeJS.ProcessEnv = ENV): string[] {
  return errorOf(text, env).message.split('\n');
}

describe('a valid config', () => {
  it('parses the documented example with every key', () => {
    const config = parse(
      yaml(
        'data_dir: /var/lib/oktail',
        'log:',
        '  level: debug',
        '  format: json',
        'api:',
        '  address: 127.0.0.1:9598',
        'sources:',
        '  okta:',
        '    type: okta',
        '    domain: company.okta.com',
        '    interval_secs: 300',
        '    start_from: 2025-01-15T08:30:00.000Z',
        '    script: ./my-okta.lua',
        '    auth:',
        '      strategy: bearer',
        '      token: ${OKTA_API_TOKEN}',
        '      header: Authorization',
        '      prefix: "SSWS "',
        '    tls:',
        '      enabled: true',
        '      ca_file: /etc/oktail/ca.pem',
        '      crt_file: /etc/oktail/client.pem',
        '      key_file: /etc/oktail/client.key',
        '      key_pass: ${KEY_PASS}',
        '      verify_certificate: true',
        '      verify_hostname: false',
        '    rate_limit:',
        '      max_share: 0.25',
        '      min_remaining: 5',
        '    retry:',
        '      initial_backoff_ms: 500',
        '      max_backoff_secs: 60',
        '    request_timeout_secs: 30',
        'sinks:',
        '  archive:',
        '    type: file',
        '    inputs: [okta]',
        '    path: /var/log/oktail/okta.ndjson',
        '  console:',
        '    type: stdout',
        '    inputs: [okta]',
      ),
      { ...ENV, KEY_PASS: 'key-passphrase' },
    );

    expect(config).toEqual({
      data_dir: '/var/lib/oktail',
      log: { level: 'debug', format: 'json' },
      api: { address: '127.0.0.1:9598' },
      sources: {
        okta: {
          type: 'okta',
          domain: 'company.okta.com',
          interval_secs: 300,
          start_from: '2025-01-15T08:30:00.000Z',
          script: '/srv/oktail/my-okta.lua',
          auth: { strategy: 'bearer', token: TOKEN, header: 'Authorization', prefix: 'SSWS ' },
          tls: {
            enabled: true,
            ca_file: '/etc/oktail/ca.pem',
            crt_file: '/etc/oktail/client.pem',
            key_file: '/etc/oktail/client.key',
            key_pass: 'key-passphrase',
            verify_certificate: true,
            verify_hostname: false,
          },
          rate_limit: { max_share: 0.25, min_remaining: 5 },
          retry: { initial_backoff_ms: 500, max_backoff_secs: 60 },
          request_timeout_secs: 30,
        },
      },
      sinks: {
        archive: { type: 'file', inputs: ['okta'], path: '/var/log/oktail/okta.ndjson' },
        console: { type: 'stdout', inputs: ['okta'] },
      },
    });
  });

  it('fills every default in a minimal config', () => {
    const config = parse(withSource());

    expect(config).toEqual({
      data_dir: '/srv/oktail/.oktail',
      log: { level: 'info' },
      sources: {
        okta: {
          type: 'okta',
          domain: 'company.okta.com',
          interval_secs: 120,
          start_from: null,
          script: null,
          auth: { strategy: 'bearer', token: TOKEN, header: 'Authorization', prefix: 'SSWS ' },
          tls: { enabled: false, verify_certificate: true, verify_hostname: true },
          rate_limit: { max_share: 0.5, min_remaining: 2 },
          retry: { initial_backoff_ms: 1000, max_backoff_secs: 300 },
          request_timeout_secs: 60,
        },
      },
      sinks: { console: { type: 'stdout', inputs: ['okta'] } },
    });
  });

  it('leaves log.format undefined when absent so the terminal can decide', () => {
    expect(parse(withSource()).log.format).toBeUndefined();
  });

  it('leaves api undefined when absent', () => {
    expect(parse(withSource()).api).toBeUndefined();
  });

  it('treats a section written without a value like an absent one', () => {
    const config = parse(`log:\napi:\n${withSource(['    tls:', '    retry:'])}`);

    expect(config.log.level).toBe('info');
    expect(config.api).toBeUndefined();
    expect(config.sources.okta?.tls.enabled).toBe(false);
  });

  it('accepts several sources, each with its own name', () => {
    const config = parse(
      yaml(
        'sources:',
        '  eu-org:',
        '    type: okta',
        '    domain: eu.okta-emea.com',
        '    auth: { token: a-token }',
        '  us_org:',
        '    type: okta',
        '    domain: us.okta.com',
        '    auth: { token: b-token }',
        'sinks:',
        '  all:',
        '    type: stdout',
        '    inputs: [eu-org, us_org]',
      ),
    );

    expect(Object.keys(config.sources)).toEqual(['eu-org', 'us_org']);
  });

  it('shares values through YAML anchors and aliases, interpolated once', () => {
    const config = parse(
      yaml(
        'sources:',
        '  okta:',
        '    type: okta',
        '    domain: company.okta.com',
        '    auth: &auth',
        '      token: ${OKTA_API_TOKEN}',
        '  preview:',
        '    type: okta',
        '    domain: company.oktapreview.com',
        '    auth: *auth',
        'sinks:',
        '  console: { type: stdout, inputs: [okta, preview] }',
      ),
    );

    expect(config.sources.preview?.auth).toMatchObject({ token: TOKEN });
  });
});

describe('relative paths', () => {
  it('resolves data_dir, file sink paths, tls files and script against the config directory', () => {
    const config = parse(
      yaml(
        'data_dir: state',
        'sources:',
        '  okta:',
        '    type: okta',
        '    domain: company.okta.com',
        '    script: scripts/okta.lua',
        '    auth: { token: a-token }',
        '    tls: { enabled: true, ca_file: ca.pem, crt_file: ./tls/c.pem, key_file: ../k.pem }',
        'sinks:',
        '  archive:',
        '    type: file',
        '    inputs: [okta]',
        '    path: out/okta.ndjson',
      ),
    );

    expect(config.data_dir).toBe('/srv/oktail/state');
    expect(config.sources.okta?.script).toBe('/srv/oktail/scripts/okta.lua');
    expect(config.sources.okta?.tls).toMatchObject({
      ca_file: '/srv/oktail/ca.pem',
      crt_file: '/srv/oktail/tls/c.pem',
      key_file: '/srv/k.pem',
    });
    expect(config.sinks.archive).toMatchObject({ path: '/srv/oktail/out/okta.ndjson' });
  });

  it('does not require the referenced files to exist', () => {
    expect(() => parse(withSource(['    script: /nowhere/missing.lua']))).not.toThrow();
  });
});

describe('domain', () => {
  it.each(['company.okta.com', 'login.example.com', '127.0.0.1:8443', 'localhost:8443'])(
    'accepts %s',
    (domain) => {
      expect(parse(withSource([], domain)).sources.okta?.domain).toBe(domain);
    },
  );

  it('accepts a quoted IPv6 address with a port', () => {
    expect(parse(withSource([], '"[::1]:8443"')).sources.okta?.domain).toBe('[::1]:8443');
  });

  it('asks to remove a scheme and shows the fixed domain', () => {
    expect(lines(withSource([], 'https://company.okta.com'))).toEqual([
      'sources.okta.domain (line 4): remove the scheme: write company.okta.com',
    ]);
  });

  it('asks to remove a path', () => {
    expect(problems(withSource([], 'company.okta.com/api/v1'))[0]?.message).toBe(
      'remove the path: write company.okta.com',
    );
  });

  it('rejects the -admin. console host', () => {
    expect(problems(withSource([], 'company-admin.okta.com'))[0]?.message).toBe(
      "use the org's API host, not the -admin. console host: write company.okta.com",
    );
  });

  it('rejects whitespace inside the domain', () => {
    expect(problems(withSource([], '"company .okta.com"'))[0]?.message).toBe('must not contain whitespace');
  });

  it('rejects an empty domain', () => {
    expect(problems(withSource([], '""'))[0]?.message).toBe('must not be empty');
  });

  it('does not echo a fix derived from an environment variable', () => {
    const [problem] = problems(withSource([], '${OKTA_DOMAIN}'), {
      ...ENV,
      OKTA_DOMAIN: 'https://x.okta.com',
    });

    expect(problem?.message).toBe('remove the scheme (from environment variable OKTA_DOMAIN)');
  });
});

describe('start_from', () => {
  it('keeps an unquoted timestamp a string and normalises it to UTC with milliseconds', () => {
    expect(parse(withSource(['    start_from: 2025-01-15T09:30:00+01:00'])).sources.okta?.start_from).toBe(
      '2025-01-15T08:30:00.000Z',
    );
  });

  it('accepts a timestamp without milliseconds', () => {
    expect(parse(withSource(['    start_from: 2025-01-15T08:30:00Z'])).sources.okta?.start_from).toBe(
      '2025-01-15T08:30:00.000Z',
    );
  });

  it('keeps a timestamp a string even under a %YAML 1.1 directive', () => {
    const config = parse(`%YAML 1.1\n---\n${withSource(['    start_from: 2025-01-15T08:30:00.000Z'])}`);

    expect(config.sources.okta?.start_from).toBe('2025-01-15T08:30:00.000Z');
  });

  it('treats an empty string as now', () => {
    expect(parse(withSource(['    start_from: ""'])).sources.okta?.start_from).toBeNull();
  });

  it('treats a key without a value as now', () => {
    expect(parse(withSource(['    start_from:'])).sources.okta?.start_from).toBeNull();
  });

  it('accepts a date older than Okta keeps events', () => {
    expect(parse(withSource(['    start_from: 2001-01-01T00:00:00Z'])).sources.okta?.start_from).toBe(
      '2001-01-01T00:00:00.000Z',
    );
  });

  it('requires a timezone', () => {
    expect(lines(withSource(['    start_from: 2025-01-15T08:30:00']))).toEqual([
      'sources.okta.start_from (line 7): must be an ISO 8601 date-time with a timezone, e.g. 2025-01-15T08:30:00.000Z',
    ]);
  });

  it('rejects a date that does not exist', () => {
    expect(problems(withSource(['    start_from: 2025-02-30T00:00:00Z']))).toHaveLength(1);
  });
});

describe('numbers', () => {
  it('reports an interval below the range with both bounds and the value', () => {
    expect(lines(withSource(['    interval_secs: 5']))).toEqual([
      'sources.okta.interval_secs (line 7): must be between 10 and 86401, got 5',
    ]);
  });

  it('reports an interval above the range', () => {
    expect(problems(withSource(['    interval_secs: 86402']))[0]?.message).toBe(
      'must be between 10 and 86401, got 86402',
    );
  });

  it('requires a whole number of seconds', () => {
    expect(problems(withSource(['    interval_secs: 12.5']))[0]?.message).toBe(
      'must be a whole number, got 12.5',
    );
  });

  it('names the type of a value of the wrong type', () => {
    expect(problems(withSource(['    rate_limit: { max_share: half }']))[0]?.message).toBe(
      'must be a number, got string',
    );
  });

  it('does not accept a quoted number', () => {
    expect(problems(withSource(['    request_timeout_secs: "30"']))[0]?.message).toBe(
      'must be a number, got string',
    );
  });

  it.each([
    [
      'rate_limit: { max_share: 0 }',
      'sources.okta.rate_limit.max_share',
      'must be greater than 0 and at most 1, got 0',
    ],
    [
      'rate_limit: { max_share: 1.5 }',
      'sources.okta.rate_limit.max_share',
      'must be greater than 0 and at most 1, got 1.5',
    ],
    [
      'rate_limit: { min_remaining: -1 }',
      'sources.okta.rate_limit.min_remaining',
      'must be 0 or more, got -1',
    ],
    [
      'retry: { initial_backoff_ms: 5 }',
      'sources.okta.retry.initial_backoff_ms',
      'must be between 10 and 60000, got 5',
    ],
    [
      'retry: { max_backoff_secs: 3601 }',
      'sources.okta.retry.max_backoff_secs',
      'must be between 1 and 3600, got 3601',
    ],
    ['request_timeout_secs: 4', 'sources.okta.request_timeout_secs', 'must be between 5 and 600, got 4'],
  ])('checks the range of %s', (setting, path, message) => {
    expect(problems(withSource([`    ${setting}`]))).toEqual([{ path, line: 7, message }]);
  });

  it('accepts a share of exactly 1', () => {
    expect(parse(withSource(['    rate_limit: { max_share: 1 }'])).sources.okta?.rate_limit.max_share).toBe(
      1,
    );
  });

  it('rejects a first backoff longer than the longest backoff', () => {
    expect(problems(withSource(['    retry: { initial_backoff_ms: 5000, max_backoff_secs: 2 }']))).toEqual([
      {
        path: 'sources.okta.retry.initial_backoff_ms',
        line: 7,
        message: 'must not be longer than retry.max_backoff_secs',
      },
    ]);
  });
});

describe('unknown keys', () => {
  it('reports a typo inside tls with the key it probably meant', () => {
    expect(lines(withSource(['    tls:', '      enabled: true', '      verify_hostnme: false']))).toEqual([
      'sources.okta.tls.verify_hostnme (line 9): unknown key "verify_hostnme"; did you mean verify_hostname?',
    ]);
  });

  it('lists the allowed keys when nothing is close', () => {
    expect(problems(`colour: blue\n${withSource()}`)[0]?.message).toBe(
      'unknown key "colour" (allowed: data_dir, state, log, api, console, proxy, sources, sinks)',
    );
  });

  it('suggests keys of the sink type actually written', () => {
    const text = withSource().replace('    inputs: [okta]', '    inputs: [okta]\n    pth: x');

    expect(problems(text)[0]?.message).toBe('unknown key "pth" (allowed: type, inputs)');
  });

  it('reports an unknown key in a file sink with a suggestion', () => {
    const text = yaml(
      ...withSource().split('\n').slice(0, 6),
      'sinks:',
      '  archive:',
      '    type: file',
      '    inputs: [okta]',
      '    paht: out.ndjson',
    );

    expect(problems(text)).toContainEqual({
      path: 'sinks.archive.paht',
      line: 11,
      message: 'unknown key "paht"; did you mean path?',
    });
  });
});

describe('enumerations and types', () => {
  it('lists the allowed log levels', () => {
    expect(problems(`log: { level: verbose }\n${withSource()}`)).toEqual([
      {
        path: 'log.level',
        line: 1,
        message: 'must be one of trace, debug, info, warn, error, fatal, silent',
      },
    ]);
  });

  it('accepts only okta sources', () => {
    expect(problems(withSource().replace('type: okta', 'type: splunk'))).toEqual([
      { path: 'sources.okta.type', line: 3, message: 'must be okta' },
    ]);
  });

  it('lists the sink types', () => {
    expect(problems(withSource().replace('type: stdout', 'type: kafka'))[0]?.message).toBe(
      `must be one of ${SINK_TYPES}`,
    );
  });

  it('requires a sink type', () => {
    expect(problems(withSource().replace('    type: stdout\n', ''))).toEqual([
      { path: 'sinks.console.type', line: 8, message: `is required (one of ${SINK_TYPES})` },
    ]);
  });

  it('requires a mapping where a section goes', () => {
    expect(problems(withSource(['    tls: yes']))[0]?.message).toBe('must be a mapping, got string');
  });

  it('requires the config itself to be a mapping', () => {
    expect(lines('- a\n- b\n')).toEqual(['the config must be a mapping, got list']);
  });

  it('reports an empty file', () => {
    expect(lines('# nothing yet\n')).toEqual(['the config is empty; it needs at least sources and sinks']);
  });
});

describe('sources and sinks', () => {
  it('requires the sources section', () => {
    expect(problems(yaml('sinks:', '  c: { type: stdout, inputs: [okta] }'))).toContainEqual({
      path: 'sources',
      line: null,
      message: 'is required',
    });
  });

  it('requires at least one source', () => {
    expect(problems(yaml('sources: {}', 'sinks:', '  c: { type: stdout, inputs: [okta] }'))).toContainEqual({
      path: 'sources',
      line: 1,
      message: 'must define at least one source',
    });
  });

  it('requires at least one sink', () => {
    expect(problems(withSource().replace(/sinks:[\s\S]*$/, 'sinks: {}\n'))).toEqual([
      { path: 'sinks', line: 7, message: 'must define at least one sink' },
    ]);
  });

  it('reports a sink input that names an unknown source', () => {
    expect(lines(withSource().replace('inputs: [okta]', 'inputs: [okt]'))).toEqual([
      "sources.okta (line 2): no sink takes this source as input; add okta to a sink's inputs or remove the source",
      'sinks.console.inputs[0] (line 10): unknown source "okt" (known: okta)',
    ]);
  });

  it('reports a source that no sink takes as input', () => {
    const text = yaml(
      ...withSource().trimEnd().split('\n').slice(0, 6),
      '  spare:',
      '    type: okta',
      '    domain: spare.okta.com',
      '    auth: { token: t-token }',
      ...withSource().trimEnd().split('\n').slice(6),
    );

    expect(problems(text)).toEqual([
      {
        path: 'sources.spare',
        line: 7,
        message: "no sink takes this source as input; add spare to a sink's inputs or remove the source",
      },
    ]);
  });

  it('requires a non-empty inputs list', () => {
    expect(problems(withSource().replace('inputs: [okta]', 'inputs: []'))).toContainEqual({
      path: 'sinks.console.inputs',
      line: 10,
      message: 'must list at least one source',
    });
  });

  it('reports a source listed twice in one sink', () => {
    expect(problems(withSource().replace('inputs: [okta]', 'inputs: [okta, okta]'))).toEqual([
      { path: 'sinks.console.inputs[1]', line: 10, message: 'lists source "okta" twice' },
    ]);
  });

  it('reports two file sinks that resolve to the same file', () => {
    const text = yaml(
      ...withSource().trimEnd().split('\n').slice(0, 6),
      'sinks:',
      '  a:',
      '    type: file',
      '    inputs: [okta]',
      '    path: out/okta.ndjson',
      '  b:',
      '    type: file',
      '    inputs: [okta]',
      '    path: /srv/oktail/out/../out/okta.ndjson',
    );

    expect(problems(text)).toEqual([
      {
        path: 'sinks.b.path',
        line: 15,
        message: 'is the same file as sinks.a.path; two sinks cannot append to one file',
      },
    ]);
  });

  it('rejects a source name with characters outside the name rule', () => {
    expect(problems(withSource().replace('  okta:', '  "okta org":'))).toContainEqual({
      path: 'sources["okta org"]',
      line: 2,
      message: 'source name "okta org" is not allowed: use 1 to 64 letters, digits, _ or -',
    });
  });

  it('rejects a sink name longer than 64 characters', () => {
    const name = 'x'.repeat(65);

    expect(problems(withSource().replace('  console:', `  ${name}:`))[0]?.message).toBe(
      `sink name "${name}" is not allowed: use 1 to 64 letters, digits, _ or -`,
    );
  });

  it('requires a file sink path', () => {
    expect(problems(withSource().replace('type: stdout', 'type: file'))).toEqual([
      { path: 'sinks.console.path', line: 8, message: 'is required' },
    ]);
  });
});

describe('auth', () => {
  it('requires a token', () => {
    expect(
      problems(withSource().replace('      token: ${OKTA_API_TOKEN}\n', '      header: Authorization\n')),
    ).toEqual([{ path: 'sources.okta.auth.token', line: 5, message: 'is required' }]);
  });

  it('reports a token key written without a value', () => {
    expect(problems(withSource().replace('token: ${OKTA_API_TOKEN}', 'token:'))).toEqual([
      { path: 'sources.okta.auth.token', line: 6, message: 'must have a value' },
    ]);
  });

  it('rejects a token that still carries the SSWS prefix', () => {
    expect(problems(withSource(), { OKTA_API_TOKEN: `SSWS ${TOKEN}` })[0]?.message).toBe(
      'must be the token alone; auth.prefix adds the "SSWS " in front of it (from environment variable OKTA_API_TOKEN)',
    );
  });

  it('rejects a token with a trailing newline', () => {
    expect(problems(withSource(), { OKTA_API_TOKEN: `${TOKEN}\n` })[0]?.message).toBe(
      'must not contain spaces, line breaks or control characters (from environment variable OKTA_API_TOKEN)',
    );
  });

  it('accepts only the bearer and oauth2 strategies', () => {
    expect(problems(withSource(['      strategy: oauth']))[0]?.message).toBe('must be one of bearer, oauth2');
  });

  it('rejects a header name that HTTP does not allow', () => {
    expect(problems(withSource(['      header: "X Token"']))[0]?.message).toBe('must be an HTTP header name');
  });
});

describe('tls', () => {
  it('requires enabled when other tls settings are written', () => {
    expect(problems(withSource(['    tls:', '      verify_certificate: false']))).toEqual([
      {
        path: 'sources.okta.tls.enabled',
        line: 7,
        message: 'must be set: true to use verify_certificate, or false to ignore it',
      },
    ]);
  });

  it('ignores the settings when tls is explicitly disabled', () => {
    const config = parse(withSource(['    tls: { enabled: false, verify_certificate: false }']));

    expect(config.sources.okta?.tls).toMatchObject({ enabled: false, verify_certificate: false });
  });

  it('requires a key file with a client certificate', () => {
    expect(problems(withSource(['    tls: { enabled: true, crt_file: c.pem }']))[0]).toEqual({
      path: 'sources.okta.tls.crt_file',
      line: 7,
      message: 'needs tls.key_file as well',
    });
  });

  it('rejects a key passphrase without a key file', () => {
    expect(problems(withSource(['    tls: { enabled: true, key_pass: p4ssphrase }']))[0]?.message).toBe(
      'is used only with tls.key_file',
    );
  });
});

describe('api', () => {
  it('accepts an IPv6 address with a port', () => {
    expect(parse(`api: { address: "[::1]:9598" }\n${withSource()}`).api?.address).toBe('[::1]:9598');
  });

  it('requires a port', () => {
    expect(problems(`api: { address: 127.0.0.1 }\n${withSource()}`)).toEqual([
      { path: 'api.address', line: 1, message: 'must be host:port, e.g. 127.0.0.1:9598 or [::1]:9598' },
    ]);
  });
});

describe('interpolation', () => {
  it('reports an unset variable with its key path and line', () => {
    expect(lines(withSource(), {})).toEqual([
      'sources.okta.auth.token (line 6): environment variable OKTA_API_TOKEN is not set; export it or write ${OKTA_API_TOKEN:-default}',
    ]);
  });

  it('uses the default when the variable is unset', () => {
    expect(parse(`log: { level: "\${LOG_LEVEL:-warn}" }\n${withSource()}`).log.level).toBe('warn');
  });

  it('uses the default when the variable is empty', () => {
    expect(
      parse(`log: { level: "\${LOG_LEVEL:-warn}" }\n${withSource()}`, { ...ENV, LOG_LEVEL: '' }).log.level,
    ).toBe('warn');
  });

  it('reports an empty variable where a value is required, naming the variable', () => {
    expect(problems(withSource(), { OKTA_API_TOKEN: '' })).toEqual([
      {
        path: 'sources.okta.auth.token',
        line: 6,
        message: 'must not be empty (from environment variable OKTA_API_TOKEN)',
      },
    ]);
  });

  it('turns $$ into a literal $', () => {
    expect(parse(withSource(['      prefix: "Pa$$ "'])).sources.okta?.auth).toMatchObject({ prefix: 'Pa$ ' });
  });

  it('gives an unquoted reference the type its value has in YAML', () => {
    expect(
      parse(withSource(['    interval_secs: ${INTERVAL}']), { ...ENV, INTERVAL: '300' }).sources.okta
        ?.interval_secs,
    ).toBe(300);
  });

  it('keeps a quoted reference a string', () => {
    expect(problems(withSource(['    interval_secs: "${INTERVAL}"']), { ...ENV, INTERVAL: '300' })).toEqual([
      {
        path: 'sources.okta.interval_secs',
        line: 7,
        message: 'must be a number, got string (from environment variable INTERVAL)',
      },
    ]);
  });

  it('cannot change the YAML structure through a variable', () => {
    const config = parse(`data_dir: \${DIR}\n${withSource()}`, { ...ENV, DIR: 'x # y\ntoken: z' });

    expect(config.data_dir).toBe('/srv/oktail/x # y\ntoken: z');
    expect(config.sources.okta?.auth).toMatchObject({ token: TOKEN });
  });

  it('interpolates items of a list', () => {
    const text = withSource().replace('inputs: [okta]', 'inputs: ["${SOURCE}"]');

    expect(parse(text, { ...ENV, SOURCE: 'okta' }).sinks.console?.inputs).toEqual(['okta']);
  });

  it('does not interpolate keys', () => {
    expect(problems(`\${KEY}: 1\n${withSource()}`, { ...ENV, KEY: 'data_dir' })[0]?.message).toContain(
      'unknown key "${KEY}"',
    );
  });
});

describe('secrets in messages', () => {
  function allText(err: ConfigError): string {
    return [err.message, ...err.problems.map((p) => `${p.path} ${p.message}`)].join('\n');
  }

  it('never shows a token put where a number is expected', () => {
    const err = errorOf(withSource(['    interval_secs: ${OKTA_API_TOKEN}']));

    expect(err.problems[0]?.message).toBe(
      'must be a number, got string (from environment variable OKTA_API_TOKEN)',
    );
    expect(allText(err)).not.toContain(TOKEN);
  });

  it('never shows a numeric token put where a number is expected', () => {
    const err = errorOf(withSource(['    interval_secs: ${OKTA_API_TOKEN}']), {
      OKTA_API_TOKEN: '4242424242',
    });

    expect(err.problems[0]?.message).toBe(
      'must be between 10 and 86401 (from environment variable OKTA_API_TOKEN)',
    );
    expect(allText(err)).not.toContain('4242424242');
  });

  it('never shows a token put in the domain', () => {
    const err = errorOf(withSource([], '${OKTA_API_TOKEN}'), { OKTA_API_TOKEN: `https://${TOKEN}/x` });

    expect(allText(err)).not.toContain(TOKEN);
  });

  it('never shows a token put in a sink input', () => {
    const err = errorOf(withSource().replace('inputs: [okta]', 'inputs: [okta, "${OKTA_API_TOKEN}"]'));

    expect(err.problems[0]?.message).toBe(
      'unknown source (known: okta) (from environment variable OKTA_API_TOKEN)',
    );
    expect(allText(err)).not.toContain(TOKEN);
  });

  it('never shows a token put in a log level', () => {
    expect(allText(errorOf(`log: { level: "\${OKTA_API_TOKEN}" }\n${withSource()}`))).not.toContain(TOKEN);
  });

  it('never shows a literal token that is invalid', () => {
    const literal = 'literal secret value';
    const err = errorOf(withSource().replace('${OKTA_API_TOKEN}', `"${literal}"`));

    expect(err.problems[0]?.path).toBe('sources.okta.auth.token');
    expect(allText(err)).not.toContain(literal);
  });

  it('never shows a key passphrase given where a boolean is expected', () => {
    const err = errorOf(withSource(['    tls: { enabled: true, verify_hostname: "${KEY_PASS}" }']), {
      ...ENV,
      KEY_PASS: 'pass-phrase-value',
    });

    expect(allText(err)).not.toContain('pass-phrase-value');
  });
});

describe('YAML problems', () => {
  it('reports a syntax error with its line', () => {
    expect(problems(withSource(['    interval_secs: [1, 2']))).toContainEqual(
      expect.objectContaining({
        line: expect.any(Number),
        message: expect.stringMatching(/^YAML syntax error: /),
      }),
    );
  });

  it('reports an unclosed quote on the line where the file ends', () => {
    const [problem] = problems('log:\n  level: "info\n');

    expect(problem).toEqual({ path: '', line: 3, message: 'YAML syntax error: Missing closing "quote' });
  });

  it('reports a duplicate key with both lines', () => {
    expect(lines(withSource(['    interval_secs: 60', '    interval_secs: 90']))).toEqual([
      'sources.okta.interval_secs (line 8): duplicate key; it is already set on line 7',
    ]);
  });

  it('does not show the file text around a syntax error', () => {
    const err = errorOf(yaml('sources:', '  okta:', `    auth: { token: "${TOKEN}`));

    expect(err.message).not.toContain(TOKEN);
  });

  it('rejects a file with more than one document', () => {
    expect(lines(`${withSource()}---\nlog: {}\n`)).toEqual([
      'line 11: the file must hold a single YAML document; remove the second "---"',
    ]);
  });
});

describe('reporting', () => {
  it('reports every problem at once, in file order', () => {
    const err = errorOf(
      yaml(
        'log: { level: loud }',
        'sources:',
        '  okta:',
        '    type: okta',
        '    domain: https://company.okta.com',
        '    interval_secs: 5',
        '    auth: { token: "${OKTA_API_TOKEN}" }',
        '    tls: { enabled: true, verify_hostnme: false }',
        'sinks:',
        '  console: { type: stdout, inputs: [okt] }',
      ),
    );

    expect(err.message).toBe(
      [
        'log.level (line 1): must be one of trace, debug, info, warn, error, fatal, silent',
        "sources.okta (line 3): no sink takes this source as input; add okta to a sink's inputs or remove the source",
        'sources.okta.domain (line 5): remove the scheme: write company.okta.com',
        'sources.okta.interval_secs (line 6): must be between 10 and 86401, got 5',
        'sources.okta.tls.verify_hostnme (line 8): unknown key "verify_hostnme"; did you mean verify_hostname?',
        'sinks.console.inputs[0] (line 10): unknown source "okt" (known: okta)',
      ].join('\n'),
    );
  });

  it('gives a missing key the line of its nearest parent', () => {
    expect(problems(withSource().replace('    domain: company.okta.com\n', ''))).toEqual([
      { path: 'sources.okta.domain', line: 2, message: 'is required' },
    ]);
  });

  it('is an OktailError with the CONFIG_INVALID code that is not retryable', () => {
    const err = errorOf(withSource(['    interval_secs: 5']));

    expect(err).toBeInstanceOf(OktailError);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.retryable).toBe(false);
    expect(err.fileName).toBe('oktail.yaml');
  });
});

describe('loadConfig', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oktail-config-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file and resolves relative paths against its directory', async () => {
    const file = join(dir, 'oktail.yaml');
    await writeFile(
      file,
      withSource().replace(
        'type: stdout\n    inputs: [okta]',
        'type: file\n    inputs: [okta]\n    path: out.ndjson',
      ),
    );

    const config = await loadConfig(file, ENV);

    expect(config.data_dir).toBe(join(dir, '.oktail'));
    expect(config.sinks.console).toMatchObject({ path: join(dir, 'out.ndjson') });
  });

  it('reports a missing file as a config problem', async () => {
    const file = join(dir, 'missing.yaml');

    await expect(loadConfig(file, ENV)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: `cannot read the config file ${file}: the file does not exist`,
      problems: [
        { path: '', line: null, message: `cannot read the config file ${file}: the file does not exist` },
      ],
    });
  });

  it('reports a directory given as the config file', async () => {
    await expect(loadConfig(dir, ENV)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: `cannot read the config file ${dir}: it is a directory`,
    });
  });

  it('reads variables from the given environment', async () => {
    const file = join(dir, 'oktail.yaml');
    await writeFile(file, withSource());

    await expect(loadConfig(file, {})).rejects.toThrow(/OKTA_API_TOKEN is not set/);
  });

  it('loads with secrets left unresolved for commands that never contact Okta', async () => {
    const file = join(dir, 'oktail.yaml');
    await writeFile(file, withSource());

    const config = await loadConfig(file, {}, { secrets: 'unresolved' });
    expect((config.sources.okta!.auth as { token?: string }).token).toBe('${OKTA_API_TOKEN}');
    expect(config.sources.okta!.domain).toBe('company.okta.com');
    // Not even a set variable is read then: the token stays out of the process's config.
    const set = await loadConfig(file, ENV, { secrets: 'unresolved' });
    expect((set.sources.okta!.auth as { token?: string }).token).toBe('${OKTA_API_TOKEN}');
    // Every other value is still interpolated and validated.
    await writeFile(file, withSource(['    interval_secs: ${INTERVAL}']));
    await expect(loadConfig(file, {}, { secrets: 'unresolved' })).rejects.toThrow(/INTERVAL is not set/);
  });
});
