import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter.js';
import { readRateLimit, type RateLimitInfo } from './rate-limit-headers.js';

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
    // 60 allowed per minute, share 0.5 -> 30 for us; one used, 29 left in 30 slots of 60 s (the 30th
    // slot is the next window's first request).
    done({ limit: 60, remaining: 59, resetInMs: 60_000, resetEpochSecs: 1060 }, clock.t);
    expect(limiter.nextWait().ms).toBeCloseTo(60_000 / 30, 0);
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

  /** One request through the limiter, answered at once with `info`. */
  async function send(limiter: RateLimiter, clock: { t: number }, info: RateLimitInfo) {
    const done = await limiter.acquire(new AbortController().signal);
    done(info, clock.t);
  }

  it('keeps room for what other clients will spend in the rest of the window, not only min_remaining', async () => {
    const clock = { t: 1_000_000 };
    const limiter = limiterAt(clock);
    // Last window: 15 requests of theirs in the 5 s between our two, 30 a window at that pace.
    await send(limiter, clock, { limit: 60, remaining: 59, resetInMs: 10_000, resetEpochSecs: 1010 });
    clock.t += 5_000;
    await send(limiter, clock, { limit: 60, remaining: 43, resetInMs: 5_000, resetEpochSecs: 1010 });
    clock.t += 5_000;
    await send(limiter, clock, { limit: 60, remaining: 59, resetInMs: 10_000, resetEpochSecs: 1020 });
    // They are expected to spend 30 again: 59 - 2 - 30 = 27 for us in 28 slots, not our whole share.
    expect(limiter.nextWait()).toMatchObject({ reason: 'spread' });
    expect(limiter.nextWait().ms).toBeCloseTo(10_000 / 28, 0);
    // Halfway through, at the same pace (15 theirs, 1 more ours): 43 - 2 - 15 = 26 over the 5 s left.
    clock.t += 5_000;
    await send(limiter, clock, { limit: 60, remaining: 43, resetInMs: 5_000, resetEpochSecs: 1020 });
    expect(limiter.nextWait().ms).toBeCloseTo(5_000 / 27, 0);
  });

  it('expects nothing of other clients from a window long past', async () => {
    const clock = { t: 1_000_000 };
    const limiter = limiterAt(clock);
    await send(limiter, clock, { limit: 60, remaining: 59, resetInMs: 10_000, resetEpochSecs: 1010 });
    clock.t += 5_000;
    await send(limiter, clock, { limit: 60, remaining: 43, resetInMs: 5_000, resetEpochSecs: 1010 });
    clock.t += 120_000;
    await send(limiter, clock, { limit: 60, remaining: 59, resetInMs: 10_000, resetEpochSecs: 1130 });
    // Our share (30) less the one just used, in 30 slots.
    expect(limiter.nextWait().ms).toBeCloseTo(10_000 / 30, 0);
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

describe('RateLimiter reading the reset through the server clock', () => {
  /** Headers as a server whose clock is `skewMs` ahead of ours sends them at local time `t`. */
  function response(t: number, skewMs: number, resetEpochSecs: number, remaining = 50) {
    const serverNow = t + skewMs;
    return {
      limit: 60,
      remaining,
      resetEpochSecs,
      resetInMs: resetEpochSecs * 1000 - Math.floor(serverNow / 1000) * 1000,
      serverDateMs: Math.floor(serverNow / 1000) * 1000,
    };
  }

  it('narrows a one-second Date down to the real reset as responses arrive at other fractions of a second', () => {
    const skewMs = 600_000 + 730; // ten minutes and a fraction ahead
    const clock = { t: 1_000_000_000 };
    const limiter = new RateLimiter({ maxShare: 1, minRemaining: 0, now: () => clock.t, random: () => 0 });
    const resetEpochSecs = Math.floor((clock.t + skewMs) / 1000) + 60;
    const localReset = resetEpochSecs * 1000 - skewMs;
    const resumesAt = () => {
      limiter.observe(response(clock.t, skewMs, resetEpochSecs, 0), clock.t + 5, clock.t);
      const wait = limiter.nextWait();
      expect(wait.reason).toBe('bucket-low');
      return clock.t + wait.ms;
    };
    // One response alone places the reset up to a second late: here 730 ms plus the margin.
    expect(resumesAt() - localReset).toBeGreaterThan(700);
    for (let i = 1; i < 10; i++) {
      clock.t += 1_070;
      limiter.observe(response(clock.t, skewMs, resetEpochSecs, 59), clock.t + 5, clock.t);
    }
    const late = resumesAt() - localReset;
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThanOrEqual(200);
  });

  it('forgets the estimate when the server clock jumps back, rather than resuming before the reset', () => {
    const clock = { t: 1_000_000_000 };
    const limiter = new RateLimiter({ maxShare: 1, minRemaining: 0, now: () => clock.t, random: () => 0 });
    let skewMs = 0;
    const reset = () => Math.floor((clock.t + skewMs) / 1000) + 30;
    limiter.observe(response(clock.t, skewMs, reset()), clock.t + 5, clock.t);
    skewMs = -120_000; // the server's clock was corrected two minutes back
    clock.t += 1_000;
    const resetEpochSecs = reset();
    for (let i = 0; i < 60; i++)
      limiter.observe(response(clock.t, skewMs, resetEpochSecs, 0), clock.t + 5, clock.t);
    const wait = limiter.nextWait();
    expect(clock.t + wait.ms).toBeGreaterThanOrEqual(resetEpochSecs * 1000 - skewMs);
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
    expect(info).toEqual({
      limit: 50,
      remaining: 10,
      resetInMs: 30_000,
      resetEpochSecs: serverNow / 1000 + 30,
      serverDateMs: serverNow,
    });
  });

  it('returns null without rate-limit headers', () => {
    expect(readRateLimit({}, Date.now())).toBeNull();
  });
});
