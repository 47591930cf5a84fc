import { describe, expect, it } from 'vitest';
import { retryAfterMs } from './http-answers.js';

describe('retryAfterMs', () => {
  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
    const later = retryAfterMs(new Date(Date.now() + 60_000).toUTCString()) ?? 0;
    expect(later).toBeGreaterThan(55_000);
  });
});
