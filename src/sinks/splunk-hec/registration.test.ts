import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../config/errors.js';
import { parseConfig } from '../../config/load.js';

const ENV = {
  OKTA_API_TOKEN: '00Zq3xSecretTokenValue_ab-CD',
  HEC_TOKEN: 'hec-7f3c1a52-secret',
  ES_PASSWORD: 'es-pass-secret-1',
};

function config(sink: string[]): string {
  return [
    'sources:',
    '  okta:',
    '    type: okta',
    '    domain: company.okta.com',
    '    auth:',
    '      token: ${OKTA_API_TOKEN}',
    'sinks:',
    ...sink.map((l) => `  ${l}`),
    '',
  ].join('\n');
}

const parse = (sink: string[]) =>
  parseConfig(config(sink), { env: ENV, baseDir: '/srv/oktail', fileName: 'oktail.yaml' });

function problems(sink: string[]): string[] {
  try {
    parse(sink);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  throw new Error('expected a config error');
}

describe('splunk_hec and elasticsearch config', () => {
  it('fills the defaults', () => {
    const cfg = parse([
      'splunk:',
      '  type: splunk_hec',
      '  inputs: [okta]',
      '  endpoint: https://splunk.example.com:8088',
      '  token: ${HEC_TOKEN}',
      'elastic:',
      '  type: elasticsearch',
      '  inputs: [okta]',
      '  endpoints: [https://es.example.com:9200]',
      '  auth: { strategy: basic, user: elastic, password: "${ES_PASSWORD}" }',
    ]);
    expect(cfg.sinks.splunk).toMatchObject({
      type: 'splunk_hec',
      sourcetype: 'OktaIM2:log',
      acknowledgements: true,
      ack_timeout_secs: 300,
      batch: { max_events: 1000 },
    });
    expect(cfg.sinks.elastic).toMatchObject({
      type: 'elasticsearch',
      api_version: 'elasticsearch',
      index: 'okta-logs-%Y.%m.%d',
    });
  });

  it('names the key and the fix, never the secret', () => {
    const found = problems([
      'splunk:',
      '  type: splunk_hec',
      '  inputs: [okta]',
      '  endpoint: splunk.example.com:8088',
      '  token: ${HEC_TOKEN}',
      '  acknowledgement: true',
      'elastic:',
      '  type: elasticsearch',
      '  inputs: [okta]',
      '  endpoints: [https://es.example.com:9200]',
      '  index: Okta-%Y',
      '  auth: { strategy: api_key }',
    ]);
    const text = found.join('\n');
    expect(text).toContain('sinks.splunk.endpoint');
    expect(text).toContain('sinks.splunk.acknowledgement');
    expect(text).toMatch(/sinks\.elastic\.index: must be lower case/);
    expect(text).toContain('sinks.elastic.auth.api_key');
    expect(text).not.toContain(ENV.HEC_TOKEN);
  });
});
