import { describe, expect, it } from 'vitest';
import { parseLinks } from './link-header.js';

describe('parseLinks', () => {
  it('reads Okta next and self links', () => {
    const header =
      '<https://acme.okta.com/api/v1/logs?limit=1000&after=1627500044869_1>; rel="next", ' +
      '<https://acme.okta.com/api/v1/logs?limit=1000&since=2025-01-01T00%3A00%3A00.000Z>; rel="self"';
    expect(parseLinks(header)).toEqual({
      next: 'https://acme.okta.com/api/v1/logs?limit=1000&after=1627500044869_1',
      self: 'https://acme.okta.com/api/v1/logs?limit=1000&since=2025-01-01T00%3A00%3A00.000Z',
    });
  });

  it('returns no links for a missing header', () => {
    expect(parseLinks(undefined)).toEqual({});
  });

  it('keeps a filter containing a comma inside the URL', () => {
    const header = '<https://a.okta.com/api/v1/logs?filter=a%2Cb&after=1_2>; rel="next"';
    expect(parseLinks(header).next).toBe('https://a.okta.com/api/v1/logs?filter=a%2Cb&after=1_2');
  });
});
