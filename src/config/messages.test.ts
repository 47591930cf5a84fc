import { describe, expect, it } from 'vitest';
import { allowedKeysAt, closest } from './messages.js';
import { ConfigSchema } from './schema.js';

describe('closest', () => {
  it('suggests the key a one-letter typo meant', () => {
    expect(closest('verify_hostnme', ['verify_certificate', 'verify_hostname'])).toBe('verify_hostname');
  });

  it('counts two swapped letters as one slip', () => {
    expect(closest('paht', ['type', 'inputs', 'path'])).toBe('path');
  });

  it('ignores case', () => {
    expect(closest('Domain', ['domain', 'type'])).toBe('domain');
  });

  it('suggests nothing when no key is close', () => {
    expect(closest('colour', ['data_dir', 'log', 'api', 'sources', 'sinks'])).toBeUndefined();
  });
});

describe('allowedKeysAt', () => {
  it('lists the keys of a nested object inside a source', () => {
    expect(
      allowedKeysAt(ConfigSchema, { sources: { okta: { type: 'okta' } } }, ['sources', 'okta', 'retry']),
    ).toEqual(['initial_backoff_ms', 'max_backoff_secs']);
  });

  it('picks the sink kind the data names', () => {
    expect(allowedKeysAt(ConfigSchema, { sinks: { a: { type: 'file' } } }, ['sinks', 'a'])).toEqual([
      'type',
      'inputs',
      'path',
    ]);
  });

  it('returns nothing for a path the schema does not have', () => {
    expect(allowedKeysAt(ConfigSchema, {}, ['nowhere', 'at-all'])).toEqual([]);
  });
});
