import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter.js';
import { readRateLimit } from './rate-limit-headers.js';

function limiterAt(clock: { t: number }, maxShare = 0.5, minRemaining = 2) {
  return new RateLimiter({ maxShare, minRemaining, now: () => clock.t, random: () => 0 });
}

describe('RateLimiter', () => {
  it('lets the first request go at once', () => {
    const clock = { t: 1_000_000 };
    expect(limiterAt(clock).nextWait().ms).toBe(0);
  });

  it('spreads its share evenly over what is left of the window', async () => {
    const clock = { t: 1_000_000 };
    const limiter = limiterAt(clock);
    const done = await limiter.acquire(new AbortController().signal);
    // 60 allowed per minute, share 0.5 -> 30 for us; one used, 29 left over 60 s.
    done({ limit: 60, remaining: 59, resetInMs: 60_000, resetEpochSecs: 1060 }, clock.t);
    expect(limiter.nextWait().ms).toBeCloseTo(60_000 / 29, 0);
  });

  it('waits for the window to reset once its share is used', () => {
    const clock = { t: 1_000_000 };
    const limiter = limiterAt(clock);
    for (let i = 0; i < 30; i++) {
      limiter.observe({ limit: 60, remaining: 59 - i, resetInMs: 30_000, resetEpochSecs: 1030 }, clock.t);
    }
    expect(limiter.nextWait()).toEqual({ ms: 30_000, reason: 'share-used' });
  });

  it('backs off before the bucket is empty when other clients drain it', () => {
    const clock = { t: 1_000_000 };
    const limiter = limiterAt(clock);
    limiter.observe({ limit: 60, remaining: 2, resetInMs: 20_000, resetEpochSecs: 1020 }, clock.t);
    expect(limiter.nextWait()).toEqual({ ms: 20_000, reason: 'bucket-low' });
  });

  it('starts a fresh budget in a new window', () => {
    const clock = { t: 1_000_000 };
    const limiter = limiterAt(clock);
    for (let i = 0; i < 30; i++) {
      limiter.observe({ limit: 60, remaining: 30, resetInMs: 1_000, resetEpochSecs: 1001 }, clock.t);
    }
    clock.t += 1_000;
    expect(limiter.nextWait().ms).toBe(0);
    limiter.observe({ limit: 60, remaining: 59, resetInMs: 60_000, resetEpochSecs: 1061 }, clock.t);
    expect(limiter.nextWait().reason).not.toBe('share-used');
  });

  it('ignores the concurrency 429 marker (limit 0) for window accounting', () => {
    const clock = { t: 1_000_000 };
    const limiter = limiterAt(clock);
    limiter.observe({ limit: 0, remaining: 0, resetInMs: 60_000, resetEpochSecs: 1060 }, clock.t);
    expect(limiter.nextWait().ms).toBe(0);
  });

  it('keeps one request in flight at a time', async () => {
    const limiter = new RateLimiter({ maxShare: 1, minRemaining: 0 });
    const signal = new AbortController().signal;
    const first = await limiter.acquire(signal);
    let secondIn = false;
    const second = limiter.acquire(signal).then((done) => {
      secondIn = true;
      return done;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(secondIn).toBe(false);
    first(null, Date.now());
    (await second)(null, Date.now());
    expect(secondIn).toBe(true);
  });
});

describe('readRateLimit', () => {
  it('measures the reset against the server Date, not the local clock', () => {
    // Server clock 10 minutes ahead of ours: the wait is still the 30 s the server meant.
    const serverNow = Date.UTC(2026, 0, 1, 12, 10, 0);
    const info = readRateLimit(
      {
        date: new Date(serverNow).toUTCString(),
        'x-rate-limit-limit': '50',
        'x-rate-limit-remaining': '10',
        'x-rate-limit-reset': String(serverNow / 1000 + 30),
      },
      serverNow - 600_000,
    );
    expect(info).toEqual({ limit: 50, remaining: 10, resetInMs: 30_000, resetEpochSecs: serverNow / 1000 + 30 });
  });

  it('returns null without rate-limit headers', () => {
    expect(readRateLimit({}, Date.now())).toBeNull();
  });
});
