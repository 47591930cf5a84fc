/**
 * Authentication is a per-request step: a DPoP proof depends on the method and URL, and an OAuth access
 * token may have to be fetched or renewed first. The HTTP client asks for the headers of each request and
 * reports every response back, so the provider can pick up a new DPoP nonce or drop a revoked token.
 */
export interface AuthProvider {
  readonly strategy: 'bearer' | 'oauth2';
  /** What a 401/403 message tells the operator to check, e.g. "OKTA_API_TOKEN". */
  readonly checkHint: string;
  /** Headers (lower-case names) that authenticate one request. */
  headers(method: string, url: URL, signal: AbortSignal): Promise<Record<string, string>>;
  /**
   * Sees every API response (lower-case headers). `retry` asks the client to send the request once more
   * with fresh headers (a new DPoP nonce, or a renewed token after `invalid_token`).
   */
  afterResponse(status: number, headers: Record<string, string>): 'retry' | 'done';
  /** For `oktail check`: strategy, granted scopes, whether DPoP is in use. */
  describe(): AuthDescription;
}

export interface AuthDescription {
  strategy: 'bearer' | 'oauth2';
  scopes?: string[];
  dpop?: boolean;
}

/** An API token in a fixed header (Okta's `Authorization: SSWS <token>`). */
export class BearerAuth implements AuthProvider {
  readonly strategy = 'bearer';
  readonly checkHint = 'OKTA_API_TOKEN';
  readonly #header: string;
  readonly #value: string;

  constructor(settings: { header: string; prefix: string; token: string }) {
    this.#header = settings.header.toLowerCase();
    this.#value = `${settings.prefix}${settings.token}`;
  }

  headers(): Promise<Record<string, string>> {
    return Promise.resolve({ [this.#header]: this.#value });
  }

  afterResponse(): 'done' {
    return 'done';
  }

  describe(): AuthDescription {
    return { strategy: 'bearer' };
  }
}
