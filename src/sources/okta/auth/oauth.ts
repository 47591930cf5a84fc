import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { OktaResponseError } from '../client.js';
import { DpopSigner } from './dpop.js';
import type { SigningKey } from './key.js';
import type { AuthDescription, AuthProvider } from './provider.js';

/** A raw HTTP exchange through the source's own connection (its TLS settings and proxy). */
export interface AuthTransport {
  readonly origin: string;
  /** Throws a retryable OktaResponseError when the network or the proxy fails. */
  post(
    url: URL,
    headers: Record<string, string>,
    body: string,
    signal: AbortSignal,
  ): Promise<{ status: number; headers: Record<string, string>; body: Buffer }>;
}

export interface OAuthSettings {
  clientId: string;
  key: SigningKey;
  /** Overrides a kid found in a JWK file. */
  keyId?: string;
  scopes: string[];
  dpop: 'auto' | boolean;
  /** Local clock; tests may move it. */
  now?: () => number;
}

interface AccessToken {
  value: string;
  type: 'Bearer' | 'DPoP';
  /** When to fetch the next token: shortly before this one expires. */
  refreshAtMs: number;
  scopes: string[];
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Okta allows at most an hour; a short life limits what a leaked assertion is worth. */
const ASSERTION_LIFETIME_SECS = 300;
const MAX_REFRESH_MARGIN_MS = 60_000;

/**
 * An Okta service app: client credentials with a private_key_jwt assertion, and DPoP when the org asks
 * for it (or always, or never). The access token is cached and renewed shortly before it expires, or once
 * when the API says `invalid_token`; never per request. Tokens, assertions and proofs stay inside this
 * object: no error or description carries them.
 */
export class OAuthAuth implements AuthProvider {
  readonly strategy = 'oauth2';
  readonly checkHint = 'auth.client_id and the OAuth app';
  readonly #s: OAuthSettings;
  readonly #transport: AuthTransport;
  readonly #tokenUrl: URL;
  readonly #now: () => number;
  readonly #dpop = new DpopSigner();
  #useDpop: boolean;
  #token: AccessToken | null = null;
  #pending: Promise<AccessToken> | null = null;
  /** Set when the current token replaced one the API rejected; a second rejection is final. */
  #renewedAfterReject = false;
  /** Access tokens obtained so far (for tests and `check`). */
  tokensIssued = 0;

  constructor(settings: OAuthSettings, transport: AuthTransport) {
    this.#s = settings;
    this.#transport = transport;
    this.#tokenUrl = new URL('/oauth2/v1/token', transport.origin);
    this.#now = settings.now ?? Date.now;
    this.#useDpop = settings.dpop === true;
  }

  async headers(method: string, url: URL, signal: AbortSignal): Promise<Record<string, string>> {
    const token = await this.#current(signal);
    const headers: Record<string, string> = { authorization: `${token.type} ${token.value}` };
    if (token.type === 'DPoP') headers.dpop = await this.#dpop.proof(method, url, token.value);
    return headers;
  }

  afterResponse(status: number, headers: Record<string, string>): 'retry' | 'done' {
    this.#dpop.observe(headers);
    if (status === 200) {
      this.#renewedAfterReject = false;
      return 'done';
    }
    if (status !== 401) return 'done';
    const error = /error="([^"]*)"/.exec(headers['www-authenticate'] ?? '')?.[1];
    if (error === 'use_dpop_nonce' && this.#token?.type === 'DPoP' && headers['dpop-nonce']) return 'retry';
    if (error === 'invalid_token' && !this.#renewedAfterReject) {
      // Revoked or expired early on Okta's side: one new token, and if that is refused too, halt.
      this.#token = null;
      this.#renewedAfterReject = true;
      return 'retry';
    }
    return 'done';
  }

  describe(): AuthDescription {
    return { strategy: 'oauth2', scopes: this.#token?.scopes ?? [], dpop: this.#token?.type === 'DPoP' };
  }

  /** Fetches a token now if none is cached (for `oktail check`). */
  async ensureToken(signal: AbortSignal): Promise<void> {
    await this.#current(signal);
  }

  #current(signal: AbortSignal): Promise<AccessToken> {
    const token = this.#token;
    if (token !== null && this.#now() < token.refreshAtMs) return Promise.resolve(token);
    // One token request at a time, whoever asks.
    this.#pending ??= this.#fetchToken(signal).finally(() => {
      this.#pending = null;
    });
    return this.#pending;
  }

  async #fetchToken(signal: AbortSignal): Promise<AccessToken> {
    let nonceRetries = 0;
    for (;;) {
      const startedAt = this.#now();
      const res = await this.#transport.post(
        this.#tokenUrl,
        await this.#tokenHeaders(),
        await this.#form(),
        signal,
      );
      this.#dpop.observe(res.headers);
      const answer = parseJson(res.body);
      if (res.status === 200) {
        const token = readToken(answer, startedAt, res.headers);
        this.#token = token;
        this.tokensIssued++;
        return token;
      }
      const error = typeof answer.error === 'string' ? answer.error : undefined;
      if (error === 'use_dpop_nonce' && res.headers['dpop-nonce'] && nonceRetries < 2) {
        nonceRetries++;
        this.#useDpop = this.#s.dpop !== false;
        if (this.#useDpop) continue;
      }
      // auto: the app requires DPoP (Okta's default for new service apps) and said so.
      if (error === 'invalid_dpop_proof' && this.#s.dpop === 'auto' && !this.#useDpop) {
        this.#useDpop = true;
        continue;
      }
      throw tokenFailure(res.status, answer, res.headers, this.#s, this.#useDpop);
    }
  }

  async #tokenHeaders(): Promise<Record<string, string>> {
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    if (this.#useDpop) headers.dpop = await this.#dpop.proof('POST', this.#tokenUrl);
    return headers;
  }

  /** A new assertion per attempt: Okta refuses a `jti` it has seen. */
  async #form(): Promise<string> {
    const { clientId, key, keyId, scopes } = this.#s;
    const kid = keyId ?? key.kid;
    const nowSecs = Math.floor(this.#now() / 1000);
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: key.alg, ...(kid === undefined ? {} : { kid }) })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(this.#tokenUrl.href)
      .setIssuedAt(nowSecs)
      .setExpirationTime(nowSecs + ASSERTION_LIFETIME_SECS)
      .setJti(randomUUID())
      .sign(key.key);
    return new URLSearchParams({
      grant_type: 'client_credentials',
      scope: scopes.join(' '),
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: assertion,
    }).toString();
  }
}

function parseJson(body: Buffer): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

function readToken(
  answer: Record<string, unknown>,
  startedAt: number,
  headers: Record<string, string>,
): AccessToken {
  const value = answer.access_token;
  const type = typeof answer.token_type === 'string' ? answer.token_type.toLowerCase() : '';
  if (
    typeof value !== 'string' ||
    value === '' ||
    /[\s\p{Cc}]/u.test(value) ||
    (type !== 'bearer' && type !== 'dpop')
  ) {
    throw new OAuthTokenError(
      'OKTA_FETCH_FAILED',
      'Failed to get an OAuth access token. Status=200 (the answer holds no usable access_token/token_type)',
      true,
      200,
      {},
      headers,
    );
  }
  const expiresIn = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : 3600;
  const lifetimeMs = expiresIn * 1000;
  // Measured from when the request left: the token cannot have been issued earlier than that.
  const margin = Math.min(MAX_REFRESH_MARGIN_MS, lifetimeMs / 10);
  return {
    value,
    type: type === 'dpop' ? 'DPoP' : 'Bearer',
    refreshAtMs: startedAt + lifetimeMs - margin,
    scopes: typeof answer.scope === 'string' ? answer.scope.split(' ').filter(Boolean) : [],
  };
}

/** A failure answered by the token endpoint (not by the System Log API). */
export class OAuthTokenError extends OktaResponseError {}

/** What to fix in Okta's Admin Console for each error of the token endpoint. */
const FIXES: Record<string, string> = {
  invalid_client:
    'check auth.client_id and auth.private_key_file: in the Admin Console the app must use "Public key / Private key" client authentication, be active, and have this key\'s public key uploaded (with the kid set in auth.key_id, if any)',
  invalid_scope:
    'check auth.scopes: grant the okta.logs.read scope to the app (Admin Console > Applications > the app > Okta API Scopes)',
  unauthorized_client:
    'check the app: it must be an API Services app with the Client Credentials grant type enabled',
  invalid_grant: 'check the app: it must allow the Client Credentials grant',
  access_denied: 'check the app: it must be allowed to request okta.logs.read',
  invalid_request: 'check the app: Okta rejected the token request',
};

function dpopFix(settings: OAuthSettings, usedDpop: boolean): string {
  if (!usedDpop) {
    return 'check auth.dpop: the app requires DPoP ("Require Demonstrating Proof of Possession (DPoP) header in token requests"); set auth.dpop to auto or true, or clear that setting in the Admin Console';
  }
  return settings.dpop === true
    ? "check auth.dpop and the machine's clock: Okta refused the DPoP proof; if the app does not require DPoP, set auth.dpop to auto"
    : "check the machine's clock: Okta refused the DPoP proof";
}

function tokenFailure(
  status: number,
  answer: Record<string, unknown>,
  headers: Record<string, string>,
  settings: OAuthSettings,
  usedDpop: boolean,
): OAuthTokenError {
  const error = typeof answer.error === 'string' ? answer.error.slice(0, 100) : undefined;
  const description =
    typeof answer.error_description === 'string' ? answer.error_description.slice(0, 300) : undefined;
  const details = [
    ...(error === undefined ? [] : [`error=${error}`]),
    ...(description === undefined ? [] : [`error_description=${JSON.stringify(description)}`]),
  ];
  const suffix = details.length === 0 ? '' : ` (${details.join(', ')})`;
  if (status === 429) {
    return new OAuthTokenError(
      'OKTA_RATE_LIMITED',
      `Rate limit exceeded at the token endpoint - will retry${suffix}`,
      true,
      status,
      {},
      {},
    );
  }
  if (error !== undefined && status >= 400 && status < 500) {
    const fix =
      error === 'invalid_dpop_proof' || error === 'use_dpop_nonce'
        ? dpopFix(settings, usedDpop)
        : (FIXES[error] ?? 'check the OAuth app in the Admin Console');
    // Rate-limit headers of the token endpoint describe another bucket than /api/v1/logs: not passed on.
    return new OAuthTokenError('OKTA_AUTH', `Authentication failed - ${fix}${suffix}`, false, status, {}, {});
  }
  return new OAuthTokenError(
    'OKTA_FETCH_FAILED',
    `Failed to get an OAuth access token. Status=${status}${suffix}`,
    true,
    status,
    {},
    {},
  );
}
