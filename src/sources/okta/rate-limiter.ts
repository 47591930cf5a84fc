import type { RateLimitInfo } from './rate-limit-headers.js';

export interface RateLimiterOptions {
  /** Fraction of `X-Rate-Limit-Limit` this collector may use in one window. */
  maxShare: number;
  /** Requests always left in the bucket for the org's other integrations. */
  minRemaining: number;
  /** Added to a window-reset wait; spreads restarts of many collectors. */
  maxJitterMs?: number;
  now?: () => number;
  random?: () => number;
}

export interface Wait {
  ms: number;
  reason: 'spread' | 'share-used' | 'bucket-low' | 'none';
}

/**
 * Paces one org's requests. The bucket is shared with every other client of the org, so the budget is
 * the smaller of "our share of the limit not yet used in this window" and "what the bucket holds beyond
 * the headroom we leave to others". Requests are spread evenly over what is left of the window instead
 * of bursting, which is also what makes a backlog drain at exactly the allowed rate.
 * It also serialises requests: Okta limits concurrent requests per org, and one in flight is enough.
 */
export class RateLimiter {
  readonly #opts: Required<Omit<RateLimiterOptions, 'now' | 'random'>>;
  readonly #now: () => number;
  readonly #random: () => number;
  #limit = 0;
  #remaining = 0;
  #windowId: number | null = null;
  #windowEndsAt = 0;
  #usedInWindow = 0;
  #lastRequestAt = -Infinity;
  #queue: Promise<void> = Promise.resolve();

  constructor(options: RateLimiterOptions) {
    this.#opts = { maxJitterMs: 1000, ...options };
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  /** How long to wait before the next request may be sent, and why. */
  nextWait(): Wait {
    const now = this.#now();
    if (this.#windowId === null || now >= this.#windowEndsAt) return { ms: 0, reason: 'none' };
    const share = Math.floor(this.#limit * this.#opts.maxShare) - this.#usedInWindow;
    const headroom = this.#remaining - this.#opts.minRemaining;
    const budget = Math.min(share, headroom);
    if (budget <= 0) {
      return {
        ms: this.#windowEndsAt - now + this.#jitter(),
        reason: share <= 0 ? 'share-used' : 'bucket-low',
      };
    }
    const interval = (this.#windowEndsAt - now) / budget;
    const ms = Math.max(0, this.#lastRequestAt + interval - now);
    return { ms, reason: ms > 0 ? 'spread' : 'none' };
  }

  /**
   * Waits for a slot and the budget; the returned function must be called when the response is in (with
   * its rate-limit headers, if any). Only one caller holds a slot at a time.
   */
  async acquire(
    signal: AbortSignal,
    onWait?: (wait: Wait) => void,
  ): Promise<(info: RateLimitInfo | null, receivedAtMs: number) => void> {
    const previous = this.#queue;
    let release!: () => void;
    this.#queue = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      const wait = this.nextWait();
      if (wait.ms > 0) {
        onWait?.(wait);
        await sleep(wait.ms, signal);
      }
    } catch (err) {
      release();
      throw err;
    }
    this.#lastRequestAt = this.#now();
    let done = false;
    return (info, receivedAtMs) => {
      if (done) return;
      done = true;
      if (info) this.observe(info, receivedAtMs);
      release();
    };
  }

  /** Feeds one response's headers. A concurrency 429 (`limit` 0) says nothing about the window. */
  observe(info: RateLimitInfo, receivedAtMs: number): void {
    if (info.limit <= 0) return;
    if (info.resetEpochSecs !== this.#windowId) {
      this.#windowId = info.resetEpochSecs;
      this.#usedInWindow = 0;
    }
    this.#usedInWindow++;
    this.#limit = info.limit;
    this.#remaining = info.remaining;
    this.#windowEndsAt = receivedAtMs + info.resetInMs;
  }

  #jitter(): number {
    return Math.floor(this.#random() * this.#opts.maxJitterMs);
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
