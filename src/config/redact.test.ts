import { describe, expect, it } from 'vitest';
import { parseConfig } from './load.js';
import { REDACTED, redactConfig } from './redact.js';

const TEXT = [
  'sources:',
  '  okta:',
  '    type: okta',
  '    domain: company.okta.com',
  '    auth: { token: "${OKTA_API_TOKEN}" }',
  '    tls: { enabled: true, crt_file: c.pem, key_file: k.pem, key_pass: "${KEY_PASS}" }',
  '  plain:',
  '    type: okta',
  '    domain: other.okta.com',
  '    auth: { token: other-token }',
  'sinks:',
  '  console: { type: stdout, inputs: [okta, plain] }',
].join('\n');

function load() {
  return parseConfig(TEXT, {
    env: { OKTA_API_TOKEN: 'secret-token', KEY_PASS: 'secret-pass' },
    baseDir: '/etc/oktail',
  });
}

describe('redactConfig', () => {
  it('replaces every token and key passphrase', () => {
    const redacted = redactConfig(load());

    expect(redacted.sources.okta?.auth).toMatchObject({ token: REDACTED });
    expect(redacted.sources.okta?.tls.key_pass).toBe(REDACTED);
    expect(redacted.sources.plain?.auth).toMatchObject({ token: REDACTED });
  });

  it('leaves an absent key passphrase absent', () => {
    expect(redactConfig(load()).sources.plain?.tls.key_pass).toBeUndefined();
  });

  it('keeps every other setting', () => {
    const config = load();

    expect(redactConfig(config).sources.okta?.tls).toEqual({
      ...config.sources.okta?.tls,
      key_pass: REDACTED,
    });
  });

  it('does not change the config it was given', () => {
    const config = load();

    redactConfig(config);

    expect(config.sources.okta?.auth).toMatchObject({ token: 'secret-token' });
    expect(config.sources.okta?.tls.key_pass).toBe('secret-pass');
  });

  it('leaves no secret anywhere in the printed copy', () => {
    const printed = JSON.stringify(redactConfig(load()));

    expect(printed).not.toMatch(/secret-token|secret-pass|other-token/);
  });
});
