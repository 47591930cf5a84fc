import { createHash, randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

/**
 * DPoP (RFC 9449) as Okta uses it: one key pair per process, a fresh proof per request naming its method
 * and URL, and the server's latest nonce. The key never leaves memory; the token is bound to it.
 */
export class DpopSigner {
  #keys: Promise<{ privateKey: CryptoKey; jwk: JWK }> | null = null;
  /** The latest `DPoP-Nonce` the org sent; any response may replace it. */
  nonce: string | undefined;

  #pair(): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
    this.#keys ??= (async () => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const { kty, crv, x, y } = await exportJWK(publicKey);
      return { privateKey, jwk: { kty, crv, x, y } };
    })();
    return this.#keys;
  }

  /** A proof for one request; `accessToken` adds `ath` (requests to the API, not to the token endpoint). */
  async proof(method: string, url: URL, accessToken?: string): Promise<string> {
    const { privateKey, jwk } = await this.#pair();
    // htu is the URL without query and fragment.
    const htu = `${url.origin}${url.pathname}`;
    const claims: Record<string, string> = { htm: method, htu };
    if (this.nonce !== undefined) claims.nonce = this.nonce;
    if (accessToken !== undefined) {
      claims.ath = createHash('sha256').update(accessToken, 'ascii').digest('base64url');
    }
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .setIssuedAt()
      .setJti(randomUUID())
      .sign(privateKey);
  }

  /** Takes a nonce from a response's headers (lower-case names), if it carries one. */
  observe(headers: Record<string, string>): void {
    const nonce = headers['dpop-nonce'];
    if (nonce !== undefined && nonce !== '') this.nonce = nonce;
  }
}
