import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import {
  calculateJwkThumbprint,
  decodeJwt,
  decodeProtectedHeader,
  importJWK,
  jwtVerify,
  type JWK,
  type JWTPayload,
} from 'jose';

/*
 * Okta's org authorization server for service apps, as far as a System Log collector meets it:
 * `POST /oauth2/v1/token` with the client credentials grant and a private_key_jwt assertion, DPoP with
 * the nonce dance, and the checks of access tokens and DPoP proofs on API calls.
 */

export interface OAuthClientRegistration {
  clientId: string;
  /** The public key uploaded to the app (a private key works too: its public half is used). */
  publicKey: KeyObject | JWK;
  /** When set, the assertion's `kid` must be this. */
  kid?: string;
  /** Scopes granted to the app. Default [okta.logs.read]. */
  scopes?: string[];
  /** "Require Demonstrating Proof of Possession (DPoP) header in token requests". Default true, as Okta's. */
  requireDpop?: boolean;
}

export interface OAuthEmulatorOptions {
  clients: OAuthClientRegistration[];
  /** `expires_in` of access tokens. Default 3600, Okta's. */
  tokenLifetimeSecs?: number;
  /** Proofs at the API must carry the current nonce too (the token endpoint always wants one). Default false. */
  apiNonce?: boolean;
  /** Sees every access token issued (tests add them to the secrets that must never leak). */
  onIssue?: (accessToken: string) => void;
}

export interface TokenGrant {
  clientId: string;
  /** Local clock, epoch ms. */
  at: number;
  expiresAt: number;
  dpop: boolean;
}

export interface OAuthStats {
  tokenRequests: number;
  /** Token endpoint answers by `error` (`ok` for a token). */
  answers: Record<string, number>;
  /** API requests refused, by `error` (invalid_token, use_dpop_nonce, invalid_dpop_proof, insufficient_scope). */
  apiRefusals: Record<string, number>;
  grants: TokenGrant[];
}

export interface EmulatorAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export type ApiCheck =
  { ok: true; clientId: string; headers: Record<string, string> } | ({ ok: false } & EmulatorAnswer);

interface IssuedToken {
  clientId: string;
  expiresAt: number;
  scopes: string[];
  jkt: string | null;
  revoked: boolean;
}

interface ClientState {
  registration: OAuthClientRegistration;
  key: KeyObject;
  scopes: string[];
  requireDpop: boolean;
  active: boolean;
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const PROOF_WINDOW_SECS = 60;

function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}

function oauthError(
  status: number,
  error: string,
  description: string,
  headers: Record<string, string> = {},
): EmulatorAnswer {
  return {
    status,
    headers: { 'Cache-Control': 'no-store', ...headers },
    body: Buffer.from(JSON.stringify({ error, error_description: description })),
  };
}

export class OAuthServer {
  readonly #clients = new Map<string, ClientState>();
  readonly #tokens = new Map<string, IssuedToken>();
  /** Seen `jti`s of assertions and proofs, with when they may be forgotten. */
  readonly #seenJtis = new Map<string, number>();
  readonly #queued: { status: number; error: string; description: string }[] = [];
  #nonce = randomBytes(16).toString('base64url');
  tokenLifetimeSecs: number;
  apiNonce: boolean;
  readonly stats: OAuthStats = { tokenRequests: 0, answers: {}, apiRefusals: {}, grants: [] };
  readonly #onIssue: ((accessToken: string) => void) | undefined;
  /** API requests left before the nonce rotates by itself (see rotateNonceAfter). */
  #rotateIn: number | null = null;
  /** Whether the response that triggers the rotation already carries the new nonce. */
  #announceRotation = false;

  constructor(options: OAuthEmulatorOptions) {
    this.#onIssue = options.onIssue;
    this.tokenLifetimeSecs = options.tokenLifetimeSecs ?? 3600;
    this.apiNonce = options.apiNonce ?? false;
    for (const registration of options.clients) this.register(registration);
  }

  register(registration: OAuthClientRegistration): void {
    const key =
      'kty' in registration.publicKey
        ? createPublicKey({ key: registration.publicKey as never, format: 'jwk' })
        : (registration.publicKey as KeyObject).type === 'public'
          ? (registration.publicKey as KeyObject)
          : createPublicKey(registration.publicKey as KeyObject);
    this.#clients.set(registration.clientId, {
      registration,
      key,
      scopes: registration.scopes ?? ['okta.logs.read'],
      requireDpop: registration.requireDpop ?? true,
      active: true,
    });
  }

  /** Deactivates the app: token requests get `invalid_client`, its tokens stop working. */
  revokeClient(clientId: string): void {
    const client = this.#clients.get(clientId);
    if (client) client.active = false;
    this.revokeTokens(clientId);
  }

  /** Revokes every access token issued so far (to one client or all); the client may get new ones. */
  revokeTokens(clientId?: string): void {
    for (const token of this.#tokens.values()) {
      if (clientId === undefined || token.clientId === clientId) token.revoked = true;
    }
  }

  setGrantedScopes(clientId: string, scopes: string[]): void {
    const client = this.#clients.get(clientId);
    if (client) client.scopes = scopes;
  }

  setRequireDpop(clientId: string, required: boolean): void {
    const client = this.#clients.get(clientId);
    if (client) client.requireDpop = required;
  }

  /** The next token request that authenticates gets this error instead of a token. */
  failNextToken(error: string, status = 400, description = 'Injected by the test.'): void {
    this.#queued.push({ status, error, description });
  }

  /** A new DPoP nonce; proofs with the old one are refused from now on. */
  rotateNonce(): string {
    this.#nonce = randomBytes(16).toString('base64url');
    return this.#nonce;
  }

  /** Rotates the nonce after `apiRequests` more successful API requests: a rotation mid-run, deterministically. */
  rotateNonceAfter(apiRequests: number, options: { announce: boolean }): void {
    this.#rotateIn = apiRequests;
    this.#announceRotation = options.announce;
  }

  get nonce(): string {
    return this.#nonce;
  }

  // ---------------------------------------------------------------- token endpoint

  async token(
    form: URLSearchParams,
    headers: Record<string, string | undefined>,
    tokenUrl: string,
    nowMs: number,
  ): Promise<EmulatorAnswer> {
    this.stats.tokenRequests++;
    const answer = await this.#token(form, headers, tokenUrl, nowMs);
    const key =
      answer.status === 200 ? 'ok' : (JSON.parse(answer.body.toString()) as { error: string }).error;
    this.stats.answers[key] = (this.stats.answers[key] ?? 0) + 1;
    return answer;
  }

  async #token(
    form: URLSearchParams,
    headers: Record<string, string | undefined>,
    tokenUrl: string,
    nowMs: number,
  ): Promise<EmulatorAnswer> {
    if (form.get('grant_type') !== 'client_credentials') {
      return oauthError(400, 'unsupported_grant_type', 'The authorization grant type is not supported.');
    }
    if (form.get('client_assertion_type') !== ASSERTION_TYPE || !form.get('client_assertion')) {
      return oauthError(401, 'invalid_client', 'Client authentication failed.');
    }
    const assertion = form.get('client_assertion') ?? '';
    let claims: JWTPayload;
    try {
      claims = decodeJwt(assertion);
    } catch {
      return oauthError(401, 'invalid_client', 'The client_assertion token is malformed.');
    }
    const client = typeof claims.iss === 'string' ? this.#clients.get(claims.iss) : undefined;
    if (client === undefined || !client.active) {
      return oauthError(
        401,
        'invalid_client',
        'Client authentication failed. Either the client or the client credentials are invalid.',
      );
    }
    const clientId = client.registration.clientId;
    const nowSecs = Math.floor(nowMs / 1000);
    try {
      const header = decodeProtectedHeader(assertion);
      if (client.registration.kid !== undefined && header.kid !== client.registration.kid) {
        return oauthError(401, 'invalid_client', 'The client_assertion kid does not match a registered key.');
      }
      await jwtVerify(assertion, client.key, {
        issuer: clientId,
        subject: clientId,
        audience: tokenUrl,
        currentDate: new Date(nowMs),
        requiredClaims: ['exp', 'jti'],
      });
    } catch {
      return oauthError(401, 'invalid_client', 'The client_assertion signature or claims are invalid.');
    }
    if ((claims.exp ?? 0) > nowSecs + 3600) {
      return oauthError(
        401,
        'invalid_client',
        'The client_assertion token has an expiration too far into the future.',
      );
    }
    if (!this.#freshJti(`a:${claims.jti}`, ((claims.exp ?? nowSecs) + 60) * 1000, nowMs)) {
      return oauthError(401, 'invalid_client', 'The client_assertion token has already been used.');
    }
    const queued = this.#queued.shift();
    if (queued) return oauthError(queued.status, queued.error, queued.description);

    const requested = (form.get('scope') ?? '').split(' ').filter(Boolean);
    if (requested.length === 0 || !requested.every((s) => client.scopes.includes(s))) {
      return oauthError(
        400,
        'invalid_scope',
        'The following scopes are not allowed: ' +
          requested.filter((s) => !client.scopes.includes(s)).join(' '),
      );
    }

    let jkt: string | null = null;
    const proof = headers.dpop;
    if (proof === undefined) {
      if (client.requireDpop)
        return oauthError(400, 'invalid_dpop_proof', 'The DPoP proof JWT header is missing.');
    } else {
      const checked = await this.#checkProof(proof, 'POST', tokenUrl, nowMs, null, true);
      if (!checked.ok) return oauthError(400, checked.error, checked.description, checked.headers);
      jkt = checked.jkt;
    }

    const token = randomBytes(32).toString('base64url');
    const expiresAt = nowMs + this.tokenLifetimeSecs * 1000;
    this.#tokens.set(digest(token), { clientId, expiresAt, scopes: requested, jkt, revoked: false });
    this.stats.grants.push({ clientId, at: nowMs, expiresAt, dpop: jkt !== null });
    this.#onIssue?.(token);
    return {
      status: 200,
      headers: { 'Cache-Control': 'no-store' },
      body: Buffer.from(
        JSON.stringify({
          token_type: jkt === null ? 'Bearer' : 'DPoP',
          expires_in: this.tokenLifetimeSecs,
          access_token: token,
          scope: requested.join(' '),
        }),
      ),
    };
  }

  // ---------------------------------------------------------------- API calls

  /** Checks `Authorization: Bearer|DPoP <token>` (and the DPoP proof) of an API request. */
  async checkApi(
    method: string,
    url: URL,
    headers: Record<string, string | undefined>,
    nowMs: number,
  ): Promise<ApiCheck> {
    const m = /^(Bearer|DPoP) +(\S+)\s*$/i.exec(headers.authorization ?? '');
    const scheme = m?.[1]?.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
    const refuse = (
      status: number,
      error: string,
      description: string,
      extra: Record<string, string> = {},
    ): ApiCheck => {
      this.stats.apiRefusals[error] = (this.stats.apiRefusals[error] ?? 0) + 1;
      const errorCode = status === 403 ? 'E0000006' : 'E0000011';
      return {
        ok: false,
        status,
        headers: {
          'WWW-Authenticate': `${scheme} realm="IdpError", error="${error}", error_description="${description}"`,
          ...extra,
        },
        body: Buffer.from(
          JSON.stringify({
            errorCode,
            errorSummary:
              status === 403
                ? 'You do not have permission to perform the requested action'
                : 'Invalid token provided',
            errorLink: errorCode,
            errorId: `oae${randomBytes(11).toString('base64url')}`,
            errorCauses: [],
          }),
        ),
      };
    };
    const token = m ? this.#tokens.get(digest(m[2] ?? '')) : undefined;
    if (m === null || token === undefined || token.revoked || nowMs >= token.expiresAt) {
      return refuse(401, 'invalid_token', 'The access token is invalid.');
    }
    if ((token.jkt === null) !== (scheme === 'Bearer')) {
      return refuse(401, 'invalid_token', 'The token type does not match the authorization scheme.');
    }
    const extra: Record<string, string> = {};
    if (token.jkt !== null) {
      const proof = headers.dpop;
      if (proof === undefined)
        return refuse(401, 'invalid_dpop_proof', 'The DPoP proof JWT header is missing.');
      const htu = `${url.origin}${url.pathname}`;
      const checked = await this.#checkProof(proof, method, htu, nowMs, m[2] ?? '', this.apiNonce);
      if (!checked.ok) return refuse(401, checked.error, checked.description, checked.headers);
      if (checked.jkt !== token.jkt)
        return refuse(
          401,
          'invalid_dpop_proof',
          'The DPoP proof key does not match the token binding (cnf.jkt).',
        );
      if (this.apiNonce) extra['DPoP-Nonce'] = this.#nonce;
    }
    if (!token.scopes.includes('okta.logs.read')) {
      return refuse(
        403,
        'insufficient_scope',
        'The access token provided does not contain the required scopes.',
      );
    }
    if (this.#rotateIn !== null && --this.#rotateIn <= 0) {
      this.#rotateIn = null;
      const nonce = this.rotateNonce();
      if (this.#announceRotation && this.apiNonce) extra['DPoP-Nonce'] = nonce;
    }
    return { ok: true, clientId: token.clientId, headers: extra };
  }

  async #checkProof(
    proof: string,
    method: string,
    htu: string,
    nowMs: number,
    accessToken: string | null,
    requireNonce: boolean,
  ): Promise<
    | { ok: true; jkt: string }
    | { ok: false; error: string; description: string; headers: Record<string, string> }
  > {
    const bad = (description: string) => ({
      ok: false as const,
      error: 'invalid_dpop_proof',
      description,
      headers: {},
    });
    let jwk: JWK;
    let payload: JWTPayload;
    try {
      const header = decodeProtectedHeader(proof);
      if (header.typ !== 'dpop+jwt' || header.jwk === undefined || 'd' in header.jwk) {
        return bad('The DPoP proof header must have typ dpop+jwt and a public jwk.');
      }
      jwk = header.jwk;
      const key = await importJWK(jwk, header.alg);
      ({ payload } = await jwtVerify(proof, key, { typ: 'dpop+jwt', currentDate: new Date(nowMs) }));
    } catch {
      return bad('The DPoP proof signature is invalid.');
    }
    const nowSecs = nowMs / 1000;
    if (payload.htm !== method) return bad(`The DPoP proof htm does not match ${method}.`);
    if (payload.htu !== htu) return bad('The DPoP proof htu does not match the request URL.');
    if (typeof payload.iat !== 'number' || Math.abs(payload.iat - nowSecs) > PROOF_WINDOW_SECS) {
      return bad('The DPoP proof iat is outside the allowed window.');
    }
    if (typeof payload.jti !== 'string' || payload.jti === '') return bad('The DPoP proof has no jti.');
    if (accessToken !== null) {
      const ath = createHash('sha256').update(accessToken, 'ascii').digest('base64url');
      if (payload.ath !== ath) return bad('The DPoP proof ath does not match the access token.');
    }
    if (requireNonce && payload.nonce !== this.#nonce) {
      return {
        ok: false,
        error: 'use_dpop_nonce',
        description: 'Authorization server requires nonce in DPoP proof.',
        headers: { 'DPoP-Nonce': this.#nonce },
      };
    }
    if (!this.#freshJti(`p:${payload.jti}`, nowMs + 2 * PROOF_WINDOW_SECS * 1000, nowMs)) {
      return bad('The DPoP proof jti has already been used.');
    }
    return { ok: true, jkt: await calculateJwkThumbprint(jwk) };
  }

  #freshJti(jti: string, forgetAt: number, nowMs: number): boolean {
    if (this.#seenJtis.size > 10_000) {
      for (const [seen, until] of this.#seenJtis) if (until < nowMs) this.#seenJtis.delete(seen);
    }
    if (this.#seenJtis.has(jti)) return false;
    this.#seenJtis.set(jti, forgetAt);
    return true;
  }
}
