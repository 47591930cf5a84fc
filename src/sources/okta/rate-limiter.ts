import { PromiseLock, sleep } from '../../core/async.js';
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

/*
 * Okta's `Date` has whole seconds, so one response places the reset only within a second, and a second is
 * a tenth of a 10 s window or several request slots of a 60 s one. Many responses place it within a few
 * ms, so the server clock is tracked across responses. Past that estimate the limiter still waits this
 * much: Okta notes that `X-Rate-Limit-Reset` and `Date` may disagree by a fraction of a second.
 */
const RESET_MARGIN_MS = 100;
/** Shortest stretch of our own responses over which other clients' pace is measured. */
const MIN_RATE_SPAN_MS = 1000;
/**
 * How fast the estimate gives up certainty, in ms per ms: clocks drift and get corrected, so an old
 * response vouches for a little less as time goes on. Fresh responses keep the estimate sharp.
 */
const CLOCK_AGING = 0.001;

/**
 * How far the server's clock is ahead of ours, bounded from each response's `Date`: the server stamped
 * `Date` (rounded down to the second) after we sent the request and before we received the answer, so
 * `Date - received <= offset < Date + 1 s - sent`. The largest lower bound (aged a little since it was
 * seen) is the estimate; it errs on the late side only, so a reset it predicts has happened. A response
 * whose bounds contradict the estimate means one of the clocks moved: the estimate starts over from it.
 */
export class ServerClock {
  #low = -Infinity;
  #lowAt = 0;
  #high = Infinity;
  #known = false;

  observe(serverDateMs: number, sentAtMs: number | undefined, receivedAtMs: number): void {
    const low = serverDateMs - receivedAtMs;
    const high = sentAtMs === undefined ? Infinity : serverDateMs + 1000 - sentAtMs;
    const current = this.#estimate(receivedAtMs);
    if (!this.#known || low > this.#high || high < current) {
      this.#known = true;
      this.#high = high;
    } else {
      this.#high = Math.min(this.#high, high);
      if (low < current) return;
    }
    this.#low = low;
    this.#lowAt = receivedAtMs;
  }

  /** Local time by which the server's clock has certainly reached `serverMs` (null before any `Date`). */
  localTimeOf(serverMs: number, nowMs: number): number | null {
    return this.#known ? serverMs - this.#estimate(nowMs) : null;
  }

  #estimate(atMs: number): number {
    return this.#low - Math.max(0, atMs - this.#lowAt) * CLOCK_AGING;
  }
}

export interface Wait {
  ms: number;
  reason: 'spread' | 'share-used' | 'bucket-low' | 'none';
}

/**
 * Paces one org's requests. The bucket is shared with every other client of the org, so the budget is
 * the smaller of "our share of the limit not yet used in this window" and "what the bucket holds beyond
 * the headroom we leave to others and what they are expected to spend before the reset". Requests are
 * spread evenly over what is left of the window instead of bursting, which is also what makes a backlog
 * drain at exactly the allowed rate.
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
  /** Our first response in this window: when, what the bucket held, how many requests were ours. */
  #spanStart = { at: 0, remaining: 0, ours: 0 };
  #lastObservedAt = 0;
  /** Other clients' requests, and over how long, seen between our responses of the previous window. */
  #othersLastWindow = { requests: 0, ms: 0 };
  #lastWindowEndedAt = -Infinity;
  /** The longest reset wait seen: about one window. */
  #longestResetMs = 0;
  #lastRequestAt = -Infinity;
  readonly #clock = new ServerClock();
  readonly #slot = new PromiseLock();

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
    const headroom = this.#remaining - this.#opts.minRemaining - this.#othersStillToCome(now);
    const budget = Math.min(share, headroom);
    if (budget <= 0) {
      return {
        ms: this.#windowEndsAt - now + this.#jitter(),
        reason: share <= 0 ? 'share-used' : 'bucket-low',
      };
    }
    // One slot more than requests left: the last one goes out a slot before the reset and the next
    // window's first one at the reset, so a backlog gets the whole share of every window.
    const interval = (this.#windowEndsAt - now) / (budget + 1);
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
    const release = await this.#slot.acquire();
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
    const sentAtMs = this.#now();
    this.#lastRequestAt = sentAtMs;
    let done = false;
    return (info, receivedAtMs) => {
      if (done) return;
      done = true;
      if (info) this.observe(info, receivedAtMs, sentAtMs);
      release();
    };
  }

  /**
   * Feeds one response's headers; `sentAtMs` (when the request left) sharpens the server clock estimate.
   * A concurrency 429 (`limit` 0) says nothing about the window, but its `Date` still dates the server.
   */
  observe(info: RateLimitInfo, receivedAtMs: number, sentAtMs?: number): void {
    if (info.serverDateMs !== undefined) this.#clock.observe(info.serverDateMs, sentAtMs, receivedAtMs);
    if (info.limit <= 0) return;
    const newWindow = info.resetEpochSecs !== this.#windowId;
    if (newWindow) {
      if (this.#windowId !== null) {
        this.#othersLastWindow = this.#othersThisWindow();
        this.#lastWindowEndedAt = this.#windowEndsAt;
      }
      this.#windowId = info.resetEpochSecs;
      this.#usedInWindow = 0;
    }
    this.#longestResetMs = Math.max(this.#longestResetMs, info.resetInMs);
    this.#usedInWindow++;
    this.#limit = info.limit;
    this.#remaining = info.remaining;
    this.#lastObservedAt = receivedAtMs;
    if (newWindow) {
      this.#spanStart = { at: receivedAtMs, remaining: info.remaining, ours: this.#usedInWindow };
    }
    const resetAt =
      info.serverDateMs === undefined
        ? null
        : this.#clock.localTimeOf(info.resetEpochSecs * 1000, receivedAtMs);
    this.#windowEndsAt = resetAt === null ? receivedAtMs + info.resetInMs : resetAt + RESET_MARGIN_MS;
  }

  /**
   * Other clients' requests between our first and latest response of this window: what the bucket lost
   * that was not ours.
   */
  #othersThisWindow(): { requests: number; ms: number } {
    const lost = this.#spanStart.remaining - this.#remaining;
    const ours = this.#usedInWindow - this.#spanStart.ours;
    return { requests: Math.max(0, lost - ours), ms: this.#lastObservedAt - this.#spanStart.at };
  }

  /**
   * What other clients are expected to spend in the rest of this window, at the pace they kept between
   * our responses of this window and the one before. Without it `min_remaining` holds only until our last
   * request of a window, and their requests after it would eat into (or past) that headroom.
   */
  #othersStillToCome(now: number): number {
    const seen = this.#othersThisWindow();
    const windowStartedAt = this.#windowEndsAt - this.#longestResetMs;
    if (this.#lastWindowEndedAt >= windowStartedAt - 1000) {
      seen.requests += this.#othersLastWindow.requests;
      seen.ms += this.#othersLastWindow.ms;
    }
    if (seen.ms < MIN_RATE_SPAN_MS) return 0;
    return Math.ceil((seen.requests / seen.ms) * Math.max(0, this.#windowEndsAt - now));
  }

  #jitter(): number {
    return Math.floor(this.#random() * this.#opts.maxJitterMs);
  }
}
