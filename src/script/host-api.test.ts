import { describe, expect, it } from 'vitest';

import { formatIsoTime, parseIsoTime, urlEncodeBytes } from './host-api.js';

describe('parseIsoTime', () => {
  it.each([
    ['2025-01-15T08:30:00.000Z', Date.UTC(2025, 0, 15, 8, 30)],
    ['2025-01-15T08:30:00Z', Date.UTC(2025, 0, 15, 8, 30)],
    ['2025-01-15t08:30:00z', Date.UTC(2025, 0, 15, 8, 30)],
    ['2025-01-15 08:30:00+02:00', Date.UTC(2025, 0, 15, 6, 30)],
    ['2025-01-15T08:30:00-0130', Date.UTC(2025, 0, 15, 10, 0)],
    ['2025-01-15T08:30:00.123456789Z', Date.UTC(2025, 0, 15, 8, 30, 0, 123)],
    ['2025-01-15T08:30:00.9Z', Date.UTC(2025, 0, 15, 8, 30, 0, 900)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
  ])('reads %s', (text, ms) => {
    expect(parseIsoTime(text)).toBe(ms);
  });

  it('does not turn years 0-99 into 1900-1999', () => {
    expect(formatIsoTime(parseIsoTime('0050-06-01T00:00:00Z') as number)).toBe('0050-06-01T00:00:00.000Z');
  });

  it.each([
    ['2017-09-31T22:23:07.777Z', 'day out of range'],
    ['2025-02-29T00:00:00Z', 'day out of range'],
    ['2025-13-01T00:00:00Z', 'month out of range'],
    ['2025-01-01T24:00:00Z', 'time out of range'],
    ['2025-01-01T00:00:00+24:00', 'zone offset out of range'],
    ['2025-01-01T00:00:00', 'not an ISO 8601 date-time'],
    ['2025-01-01', 'not an ISO 8601 date-time'],
    ['yesterday', 'not an ISO 8601 date-time'],
  ])('refuses %s', (text, message) => {
    const result = parseIsoTime(text);
    expect(typeof result).toBe('object');
    expect((result as { error: string }).error).toContain(message);
  });
});

describe('formatIsoTime', () => {
  it('writes UTC with milliseconds, dropping sub-millisecond fractions', () => {
    expect(formatIsoTime(Date.UTC(2025, 5, 1, 12, 0, 0, 5) + 0.9)).toBe('2025-06-01T12:00:00.005Z');
  });

  it('refuses what is not a time', () => {
    expect(formatIsoTime(Number.NaN)).toEqual({ error: 'NaN is not a time' });
    expect(formatIsoTime(9e15)).toEqual({ error: '9000000000000000 is outside the range of dates' });
  });
});

describe('urlEncodeBytes', () => {
  it('keeps only unreserved characters and encodes every other byte in upper-case hex', () => {
    const bytes = new Uint8Array([...Buffer.from("AZaz09-._~ !*'()+,/:;=?@[]&é"), 0xff, 0x00]);
    expect(urlEncodeBytes(bytes)).toBe(
      'AZaz09-._~%20%21%2A%27%28%29%2B%2C%2F%3A%3B%3D%3F%40%5B%5D%26%C3%A9%FF%00',
    );
  });
});
