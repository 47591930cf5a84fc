import * as z from 'zod';
import { REDACT_PATHS } from '../telemetry/logger.js';
import { fieldMarksAt } from './messages.js';
import { describe, expect, it } from 'vitest';
import {
  ConfigSchema,
  checkDomain,
  configJsonSchema,
  isIsoDateTime,
  parseAddress,
  parseHostPort,
} from './schema.js';

describe('checkDomain', () => {
  it.each([
    'company.okta.com',
    'company.oktapreview.com',
    'login.example.org',
    '127.0.0.1:8443',
    'localhost',
    '[::1]:8443',
  ])('accepts %s', (domain) => {
    expect(checkDomain(domain)).toBeNull();
  });

  it('asks to remove the scheme and shows the fixed value', () => {
    expect(checkDomain('https://company.okta.com')).toEqual({
      message: 'remove the scheme',
      fix: 'company.okta.com',
    });
  });

  it('asks to remove a path, including a lone trailing slash', () => {
    expect(checkDomain('company.okta.com/')).toEqual({ message: 'remove the path', fix: 'company.okta.com' });
  });

  it('points from the -admin. console host to the API host', () => {
    expect(checkDomain('company-admin.okta.com')).toEqual({
      message: "use the org's API host, not the -admin. console host",
      fix: 'company.okta.com',
    });
  });

  it('rejects an empty string', () => {
    expect(checkDomain('')?.message).toBe('must not be empty');
  });

  it('rejects whitespace and offers the trimmed value', () => {
    expect(checkDomain('company.okta.com ')).toEqual({
      message: 'must not contain whitespace',
      fix: 'company.okta.com',
    });
  });

  it.each(['company_okta.com', 'user@company.okta.com', 'company.okta.com:99999', '300.1.1.1', '::1'])(
    'rejects %s as neither host nor address',
    (domain) => {
      expect(checkDomain(domain)?.message).toMatch(/^must be a host name or IP address/);
    },
  );
});

describe('parseHostPort', () => {
  it('splits a bracketed IPv6 address and port', () => {
    expect(parseHostPort('[::1]:9598')).toEqual({ host: '::1', port: 9598 });
  });

  it('gives a null port when there is none', () => {
    expect(parseHostPort('company.okta.com')).toEqual({ host: 'company.okta.com', port: null });
  });
});

describe('parseAddress', () => {
  it('returns host and port of an api address', () => {
    expect(parseAddress('127.0.0.1:9598')).toEqual({ host: '127.0.0.1', port: 9598 });
  });

  it('throws on an address without a port', () => {
    expect(() => parseAddress('127.0.0.1')).toThrow(TypeError);
  });
});

describe('isIsoDateTime', () => {
  it.each([
    '2025-01-15T08:30:00.000Z',
    '2025-01-15T08:30:00Z',
    '2025-01-15T08:30:00+05:30',
    '2024-02-29T00:00:00Z',
  ])('accepts %s', (value) => {
    expect(isIsoDateTime(value)).toBe(true);
  });

  it.each([
    '2025-01-15T08:30:00',
    '2025-01-15',
    '2025-01-15T08:30Z',
    '2025-01-15 08:30:00Z',
    '2025-02-29T00:00:00Z',
    '2025-13-01T00:00:00Z',
    '2025-01-15T24:00:00Z',
    'yesterday',
  ])('rejects %s', (value) => {
    expect(isIsoDateTime(value)).toBe(false);
  });
});

describe('secret and path marks', () => {
  const secret = (path: (string | number)[], data?: unknown) => fieldMarksAt(ConfigSchema, path, data).secret;

  it('marks a source token, key passphrase and sink credentials as secrets', () => {
    expect(secret(['sources', 'okta', 'auth', 'token'])).toBe(true);
    expect(secret(['sources', 'okta', 'tls', 'key_pass'])).toBe(true);
    expect(secret(['sinks', 'siem', 'auth', 'token'])).toBe(true);
    expect(secret(['sinks', 'siem', 'auth', 'password'])).toBe(true);
    expect(secret(['sinks', 'siem', 'tls', 'key_pass'])).toBe(true);
  });

  it('marks the OAuth and proxy fields: passphrase and proxy URLs secret, key and proxy CA files paths', () => {
    const marks = (path: (string | number)[]) => fieldMarksAt(ConfigSchema, path);
    expect(secret(['sources', 'okta', 'auth', 'private_key_pass'])).toBe(true);
    expect(secret(['proxy', 'url'])).toBe(true);
    expect(secret(['sources', 'okta', 'proxy', 'url'])).toBe(true);
    expect(marks(['proxy', 'url']).url_password).toBe(true);
    expect(marks(['sources', 'okta', 'auth', 'private_key_file'])).toMatchObject({
      path: true,
      secret: false,
    });
    expect(marks(['proxy', 'tls', 'ca_file']).path).toBe(true);
    expect(marks(['sources', 'okta', 'proxy', 'tls', 'ca_file']).path).toBe(true);
    expect(secret(['sources', 'okta', 'auth', 'client_id'])).toBe(false);
    expect(secret(['proxy', 'no_proxy', 0])).toBe(false);
  });

  it('does not mark other keys', () => {
    expect(secret(['sources', 'okta', 'auth', 'header'])).toBe(false);
    expect(secret(['sinks', 'siem', 'auth', 'user'])).toBe(false);
    expect(secret(['sinks', 'siem', 'uri'])).toBe(false);
  });

  it('has every secret key name covered by the log redaction paths', () => {
    const names = new Set<string>();
    const walk = (schema: unknown, key: string | null, depth: number): void => {
      if (depth > 40 || typeof schema !== 'object' || schema === null) return;
      const zschema = schema as Parameters<typeof z.globalRegistry.get>[0];
      if (key !== null && (z.globalRegistry.get(zschema) as { secret?: boolean } | undefined)?.secret) {
        names.add(key);
      }
      const def = (schema as { _zod: { def: Record<string, unknown> } })._zod.def;
      for (const inner of [def.innerType, def.in, def.valueType, def.element]) walk(inner, key, depth + 1);
      for (const option of (def.options as unknown[] | undefined) ?? []) walk(option, key, depth + 1);
      for (const [k, v] of Object.entries((def.shape as Record<string, unknown> | undefined) ?? {})) {
        walk(v, k, depth + 1);
      }
    };
    walk(ConfigSchema, null, 0);
    expect([...names].sort()).toEqual(expect.arrayContaining(['key_pass', 'token']));
    for (const name of names) {
      expect(REDACT_PATHS).toContain(name);
      expect(REDACT_PATHS).toContain(`*.${name}`);
    }
  });

  it('marks paths by the sink type the data names', () => {
    const data = { sinks: { a: { type: 'file', path: 'x' }, b: { type: 'http', tls: { ca_file: 'c' } } } };
    expect(fieldMarksAt(ConfigSchema, ['sinks', 'a', 'path'], data).path).toBe(true);
    expect(fieldMarksAt(ConfigSchema, ['sinks', 'b', 'tls', 'ca_file'], data).path).toBe(true);
    expect(fieldMarksAt(ConfigSchema, ['sinks', 'b', 'uri'], data).path).toBe(false);
    expect(fieldMarksAt(ConfigSchema, ['data_dir'], data).path).toBe(true);
  });
});

describe('configJsonSchema', () => {
  type JsonSchema = {
    description?: string;
    properties?: Record<string, JsonSchema>;
    additionalProperties?: JsonSchema | boolean;
    oneOf?: JsonSchema[];
  };

  function undescribed(schema: JsonSchema, path: string): string[] {
    const missing: string[] = [];
    for (const [key, child] of Object.entries(schema.properties ?? {})) {
      if (!child.description) missing.push(`${path}.${key}`);
      missing.push(...undescribed(child, `${path}.${key}`));
    }
    if (typeof schema.additionalProperties === 'object') {
      missing.push(...undescribed(schema.additionalProperties, `${path}.*`));
    }
    for (const option of schema.oneOf ?? []) missing.push(...undescribed(option, path));
    return missing;
  }

  it('describes every property for editors', () => {
    expect(undescribed(configJsonSchema() as JsonSchema, '')).toEqual([]);
  });

  it('forbids unknown keys in the published schema', () => {
    expect(configJsonSchema()).toMatchObject({ additionalProperties: false, required: ['sources', 'sinks'] });
  });
});
