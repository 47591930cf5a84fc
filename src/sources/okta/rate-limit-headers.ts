/** Okta's rate-limit headers, read relative to the response's own `Date` so clock skew cancels out. */
export interface RateLimitInfo {
  /** `X-Rate-Limit-Limit`; 0 marks a concurrency-limit 429. */
  limit: number;
  remaining: number;
  /** Milliseconds from receipt until the window resets, by the server's clock. */
  resetInMs: number;
  /** Raw `X-Rate-Limit-Reset` (epoch seconds, server clock): identifies the window. */
  resetEpochSecs: number;
  /** The response's `Date` (server clock, whole seconds), when it had a usable one. */
  serverDateMs?: number;
}

function intHeader(headers: Record<string, string>, name: string): number | null {
  const raw = headers[name];
  if (raw === undefined || raw.trim() === '') return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : null;
}

/**
 * Reset is an epoch in the *server's* clock. Subtracting the server's `Date` gives a duration that is
 * right even when our clock is minutes off; `Date` has one-second resolution, so the estimate errs by
 * up to a second on the late (safe) side. Without a usable `Date`, fall back to the local clock.
 */
export function readRateLimit(headers: Record<string, string>, receivedAtMs: number): RateLimitInfo | null {
  const limit = intHeader(headers, 'x-rate-limit-limit');
  const remaining = intHeader(headers, 'x-rate-limit-remaining');
  const reset = intHeader(headers, 'x-rate-limit-reset');
  if (limit === null || remaining === null || reset === null) return null;
  const date = headers['date'] === undefined ? NaN : Date.parse(headers['date']);
  const serverNow = Number.isNaN(date) ? receivedAtMs : date;
  return {
    limit,
    remaining,
    resetEpochSecs: reset,
    resetInMs: Math.max(0, reset * 1000 - serverNow),
    ...(Number.isNaN(date) ? {} : { serverDateMs: date }),
  };
}
