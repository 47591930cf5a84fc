import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { CLUSTER_EXAMPLE, CONFIG_EXAMPLE, uncommentedExample } from '../src/cli/config-example.js';
import { parseConfig } from '../src/config/load.js';
import { configJsonSchema } from '../src/config/schema.js';
import { runCli } from './support/harness.js';

const env = {
  OKTA_API_TOKEN: '00exampleToken',
  OKTA_CLIENT_KEY_PASS: 'example-pass',
  OKTA_KEY_PASS: 'example-key-pass',
  PROXY_PASS: 'example-proxy-pass',
  HTTP_TOKEN: 'example-http-token',
  HTTP_CLIENT_KEY_PASS: 'example-http-pass',
  HTTP_PASSWORD: 'example-http-password',
  HEC_TOKEN: 'example-hec-token',
  HEC_CLIENT_KEY_PASS: 'example-hec-pass',
  ES_PASSWORD: 'example-es-password',
  ES_API_KEY: 'ZXhhbXBsZTprZXk=',
  PG_PASSWORD: 'example-pg-password',
  AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'example-aws-secret',
  AWS_SESSION_TOKEN: 'example-aws-session',
  HOSTNAME: 'replica-1',
};

type Schema = {
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  $ref?: string;
  $defs?: Record<string, Schema>;
};

/** Every key path the JSON Schema allows; `*` stands for a name chosen by the user (a source, a sink). */
function schemaPaths(root: Schema): Set<string> {
  const out = new Set<string>();
  const resolve = (s: Schema): Schema => (s.$ref ? resolve(root.$defs![s.$ref.replace('#/$defs/', '')]!) : s);
  const walk = (raw: Schema, prefix: string) => {
    const s = resolve(raw);
    for (const branch of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) walk(branch, prefix);
    for (const [key, child] of Object.entries(s.properties ?? {})) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      out.add(path);
      walk(child, path);
    }
    if (typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${prefix}.*`);
  };
  walk(root, '');
  return out;
}

/** Key paths present in a YAML document, with user-chosen names under sources and sinks as `*`. */
function documentPaths(text: string): Set<string> {
  const out = new Set<string>();
  const walk = (value: unknown, prefix: string[]) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
    for (const [key, child] of Object.entries(value)) {
      const named = prefix.length === 1 && (prefix[0] === 'sources' || prefix[0] === 'sinks');
      const path = [...prefix, named ? '*' : key];
      if (!named) out.add(path.join('.'));
      walk(child, path);
    }
  };
  walk(parseDocument(text).toJS(), []);
  return out;
}

describe('oktail config example', () => {
  it('is a valid config as printed', () => {
    const config = parseConfig(CONFIG_EXAMPLE, { env, baseDir: '/etc/oktail', fileName: 'example' });
    expect(Object.keys(config.sources)).toEqual(['okta']);
    expect(config.sources.okta!.auth).toMatchObject({ token: env.OKTA_API_TOKEN });
  });

  it('is still valid with every commented-out setting switched on', () => {
    const config = parseConfig(uncommentedExample(), { env, baseDir: '/etc/oktail', fileName: 'example' });
    expect(config.api?.address).toBe('127.0.0.1:9598');
    expect(Object.keys(config.sinks)).toEqual(
      expect.arrayContaining([
        'events',
        'console',
        'siem',
        'siem_basic',
        'splunk',
        'elastic',
        'opensearch',
        'oauth_events',
      ]),
    );
  });

  it('mentions every key of the schema, so it cannot drift from it', () => {
    const documented = new Set([...documentPaths(uncommentedExample()), ...documentPaths(CLUSTER_EXAMPLE)]);
    const required = schemaPaths(configJsonSchema());
    expect(required).toContain('sources.*.tls.key_pass');
    expect(required).toContain('sinks.*.path');
    const missing = [...required].filter((p) => !documented.has(p));
    expect(missing).toEqual([]);
  });

  it('has a valid cluster variant with the state in PostgreSQL', () => {
    const config = parseConfig(CLUSTER_EXAMPLE, { env, baseDir: '/etc/oktail', fileName: 'example' });
    expect(config.state).toMatchObject({ backend: 'postgres', lease_secs: 15, node_id: 'replica-1' });
    expect(Object.keys(config.sources)).toEqual(['acme', 'globex']);
  });

  it('is what the command prints', async () => {
    const result = await runCli(['config', 'example']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(CONFIG_EXAMPLE);
  });
});

describe('oktail config schema', () => {
  it('prints the JSON Schema of the config', async () => {
    const result = await runCli(['config', 'schema']);
    expect(result.code).toBe(0);
    const schema = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(schema).toEqual(JSON.parse(JSON.stringify(configJsonSchema())));
    expect(schema.title).toBe('oktail configuration');
  });
});
