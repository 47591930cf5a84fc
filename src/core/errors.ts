/**
 * Stable error codes. Operators match on these (and exit codes are derived from them in src/cli),
 * so a code never changes meaning once released.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'OKTA_BAD_REQUEST'
  | 'OKTA_AUTH'
  | 'OKTA_RATE_LIMITED'
  | 'OKTA_FETCH_FAILED'
  | 'ORIGIN_MISMATCH'
  | 'PROXY_AUTH'
  | 'SCRIPT_ERROR'
  | 'SINK_WRITE_FAILED'
  | 'STATE_CORRUPT'
  | 'STATE_LOCKED'
  /** The state database (state.backend: postgres) cannot be reached or refused a query. */
  | 'STATE_UNAVAILABLE'
  /** This replica no longer holds a source's lease (another took it over): the source stops here. */
  | 'LEASE_LOST'
  | 'INTERNAL';

export interface OktailErrorOptions {
  cause?: unknown;
}

/** The one error type the product throws on purpose. `retryable` tells the caller whether to try again. */
export class OktailError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryable = false,
    options: OktailErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OktailError';
  }
}

export function isOktailError(err: unknown, code?: ErrorCode): err is OktailError {
  return err instanceof OktailError && (code === undefined || err.code === code);
}

/** A message safe to log for any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
