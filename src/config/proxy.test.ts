import { describe, expect, it } from 'vitest';
import { bypasses, resolveProxy } from '../sources/okta/proxy.js';
import { ConfigError } from './errors.js';
import { parseConfig } from './load.js';
import { redactConfig, redactProxyUrl } from './redact.js';
import { checkNoProxyEntry, checkProxyUrl } from './proxy.js';

const PASSWORD = 'Proxy-Secret-99';

function parse(top: string[], source: string[] = []) {
  const text = [
    ...top,
    'sources:',
    '  okta:',
    '    type: okta',
    '    domain: company.okta.com',
    '    auth: { token: "${OKTA_API_TOKEN}" }',
    ...source.map((l) => `    ${l}`),
    'sinks:',
    '  console: { type: stdout, inputs: [okta] }',
    '',
  ].join('\n');
  return parseConfig(text, {
    env: { OKTA_API_TOKEN: 'token-value-1234', PROXY_PASS: PASSWORD },
    baseDir: '/etc/oktail',
    fileName: 'oktail.yaml',
  });
}

function problems(top: string[], source: string[] = []): string[] {
  try {
    parse(top, source);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  return [];
}

describe('proxy config', () => {
  it('takes a global block and a per-source one, resolving the CA path', () => {
    const config = parse(
      ['proxy:', '  url: "http://u:${PROXY_PASS}@proxy.corp.example:3128"', '  tls: { ca_file: ca.pem }'],
      ['proxy: { url: "", no_proxy: [".internal.example", 10.0.0.0/8] }'],
    );
    expect(config.proxy).toEqual({
      url: `http://u:${PASSWORD}@proxy.corp.example:3128`,
      no_proxy: [],
      tls: { ca_file: '/etc/oktail/ca.pem' },
    });
    expect(config.sources.okta?.proxy?.no_proxy).toEqual(['.internal.example', '10.0.0.0/8']);
  });

  it('rejects bad URLs and no_proxy entries without echoing the URL', () => {
    const found = problems([
      'proxy:',
      '  url: "socks5://u:${PROXY_PASS}@proxy:1080"',
      '  no_proxy: ["10.0.0.0/99"]',
    ]);
    expect(found).toEqual([
      'proxy.url: must start with http:// or https:// (the proxy itself is reached over HTTP or HTTPS) (from environment variable PROXY_PASS)',
      'proxy.no_proxy[0]: must be a CIDR block such as 10.0.0.0/8',
    ]);
    expect(found.join('\n')).not.toContain(PASSWORD);
    expect(checkProxyUrl('http://proxy:3128/path')).toMatch(/no path/);
    expect(checkProxyUrl('https://proxy.example')).toBeNull();
    expect(checkNoProxyEntry('*.corp.example:8443')).toBeNull();
  });

  it('redacts the password in validate --print', () => {
    const printed = JSON.stringify(
      redactConfig(parse(['proxy:', '  url: "http://u:${PROXY_PASS}@p.example:3128"'])),
    );
    expect(printed).not.toContain(PASSWORD);
    expect(printed).toContain('"url":"http://u:[redacted]@p.example:3128"');
    expect(redactProxyUrl('http://p.example:3128')).toBe('http://p.example:3128');
  });
});

describe('choosing the proxy for an org', () => {
  it.each([
    ['acme.okta.com', ['.okta.com'], true],
    ['acme.okta.com', ['okta.com'], true],
    ['acme.okta.com', ['*.okta.com'], true],
    ['acme.okta.com', ['xokta.com'], false],
    ['acme.okta.com', ['acme.okta.com:8443'], false],
    ['acme.okta.com:8443', ['acme.okta.com:8443'], true],
    ['10.1.2.3:8443', ['10.0.0.0/8'], true],
    ['11.1.2.3', ['10.0.0.0/8'], false],
    ['[::1]:8443', ['::1/128'], true],
    ['acme.okta.com', ['*'], true],
  ])('%s with no_proxy %j goes direct: %s', (domain, entries, direct) => {
    expect(bypasses(domain, entries)).toBe(direct);
  });

  it('reads the environment: lower case first, empty values as unset; a proxy block overrides it', () => {
    const env = { https_proxy: '', HTTPS_PROXY: 'http://a:b@env-proxy:3128', NO_PROXY: 'internal.example' };
    expect(resolveProxy('acme.okta.com', undefined, env)).toEqual({
      url: 'http://a:b@env-proxy:3128',
      label: 'http://env-proxy:3128',
      credentials: true,
    });
    expect(resolveProxy('logs.internal.example', undefined, env)).toBeNull();
    expect(resolveProxy('acme.okta.com', { url: '', noProxy: [] }, env)).toBeNull();
    expect(resolveProxy('acme.okta.com', undefined, { HTTP_PROXY: 'http://p:1' })?.label).toBe('http://p:1');
  });
});
