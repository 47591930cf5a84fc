import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isOktailError } from '../../../core/errors.js';
import { OktaEmulator } from '../../../emulator/emulator.js';
import type { OAuthClientRegistration } from '../../../emulator/oauth.js';
import { createTestPki, type TestPki } from '../../../emulator/pki.js';
import { OktaHttpClient } from '../client.js';
import { OAuthAuth, OAuthTokenError } from './oauth.js';

const CLIENT_ID = '0oaunit0test0client';
let pki: TestPki;
let rsa: { privateKey: KeyObject; publicKey: KeyObject };
let emulator: OktaEmulator | undefined;
let client: OktaHttpClient | undefined;

beforeAll(async () => {
  pki = await createTestPki();
  rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
});

afterEach(async () => {
  await client?.close();
  await emulator?.stop();
  client = undefined;
  emulator = undefined;
});

async function setup(
  registration: Partial<OAuthClientRegistration> = {},
  options: { dpop?: 'auto' | boolean; lifetimeSecs?: number; apiNonce?: boolean; scopes?: string[] } = {},
) {
  emulator = new OktaEmulator({
    tls: pki.server,
    tokens: [],
    oauth: {
      clients: [{ clientId: CLIENT_ID, publicKey: rsa.publicKey, ...registration }],
      tokenLifetimeSecs: options.lifetimeSecs ?? 3600,
      apiNonce: options.apiNonce ?? false,
    },
  });
  const { domain } = await emulator.start();
  emulator.appendEvents(5, { publishedStart: Date.now() - 60_000 });
  let auth: OAuthAuth | undefined;
  client = new OktaHttpClient({
    domain,
    auth: (transport) =>
      (auth = new OAuthAuth(
        {
          clientId: CLIENT_ID,
          key: { key: rsa.privateKey, alg: 'RS256' },
          scopes: options.scopes ?? ['okta.logs.read'],
          dpop: options.dpop ?? 'auto',
        },
        transport,
      )),
    tls: { ca: pki.caCert, verifyCertificate: true, verifyHostname: true },
    requestTimeoutMs: 10_000,
    userAgent: 'oktail-test',
  });
  const url = client.resolve(`/api/v1/logs?since=${new Date(Date.now() - 3600_000).toISOString()}&limit=2`);
  const fetch = () => client!.fetch(url, AbortSignal.timeout(10_000));
  return { oauth: emulator.oauth!, auth: auth!, fetch };
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

describe('OAuth 2.0 client credentials against the emulated org', () => {
  it('auto: negotiates DPoP when the app requires it, with the nonce dance, then reuses the token', async () => {
    const { oauth, auth, fetch } = await setup({ requireDpop: true });
    for (let i = 0; i < 5; i++) expect((await fetch()).status).toBe(200);
    // No DPoP -> invalid_dpop_proof; DPoP without nonce -> use_dpop_nonce; then a token.
    expect(oauth.stats.answers).toEqual({ invalid_dpop_proof: 1, use_dpop_nonce: 1, ok: 1 });
    expect(oauth.stats.grants).toHaveLength(1);
    expect(oauth.stats.grants[0]?.dpop).toBe(true);
    expect(auth.describe()).toEqual({ strategy: 'oauth2', scopes: ['okta.logs.read'], dpop: true });
    expect(emulator!.requests.filter((r) => r.path === '/api/v1/logs' && r.status === 200)).toHaveLength(5);
  });

  it('auto: uses a plain bearer token when the app does not require DPoP', async () => {
    const { oauth, auth, fetch } = await setup({ requireDpop: false });
    await fetch();
    expect(oauth.stats.answers).toEqual({ ok: 1 });
    expect(auth.describe().dpop).toBe(false);
  });

  it('true: sends DPoP from the first request; false: refuses to, and halts with what to change', async () => {
    const on = await setup({ requireDpop: false }, { dpop: true });
    await on.fetch();
    expect(on.oauth.stats.answers).toEqual({ use_dpop_nonce: 1, ok: 1 });
    expect(on.oauth.stats.grants[0]?.dpop).toBe(true);
    await client!.close();
    await emulator!.stop();

    const off = await setup({ requireDpop: true }, { dpop: false });
    const err = await failure(off.fetch());
    expect(err).toBeInstanceOf(OAuthTokenError);
    expect(isOktailError(err, 'OKTA_AUTH')).toBe(true);
    expect((err as OAuthTokenError).retryable).toBe(false);
    expect(err.message).toContain('Authentication failed - check auth.dpop: the app requires DPoP');
  });

  it('follows a nonce the API rotates: announced on a 200, or through one use_dpop_nonce retry', async () => {
    const { oauth, fetch } = await setup({}, { apiNonce: true });
    await fetch();
    // The first API call had no API nonce yet (the token endpoint's nonce is the one it knew).
    const first = oauth.stats.apiRefusals.use_dpop_nonce ?? 0;
    oauth.rotateNonceAfter(1, { announce: true });
    await fetch();
    await fetch();
    expect(oauth.stats.apiRefusals.use_dpop_nonce ?? 0).toBe(first);
    oauth.rotateNonceAfter(1, { announce: false });
    await fetch();
    await fetch();
    expect(oauth.stats.apiRefusals.use_dpop_nonce ?? 0).toBe(first + 1);
    expect(oauth.stats.grants).toHaveLength(1);
  });

  it('renews the token once on invalid_token, and halts when the renewed one is refused too', async () => {
    const { oauth, fetch } = await setup();
    await fetch();
    oauth.revokeTokens();
    expect((await fetch()).status).toBe(200);
    expect(oauth.stats.apiRefusals.invalid_token).toBe(1);
    expect(oauth.stats.grants).toHaveLength(2);

    // Every new token is refused at once: one renewal, then a final 401.
    const original = oauth.checkApi.bind(oauth);
    oauth.checkApi = async (...args) => {
      oauth.revokeTokens();
      return original(...args);
    };
    const err = await failure(fetch());
    expect(isOktailError(err, 'OKTA_AUTH')).toBe(true);
    expect(err.message).toContain('Authentication failed - check auth.client_id and the OAuth app');
    expect(oauth.stats.grants).toHaveLength(3);
  });

  it('refreshes shortly before expiry, never per request', async () => {
    let now = Date.now();
    const { oauth } = await setup({}, { lifetimeSecs: 100 });
    // Drive the provider's clock: a second client on the same org with a clock the test moves.
    await client!.close();
    client = new OktaHttpClient({
      domain: emulator!.origin.replace('https://', ''),
      auth: (transport) =>
        new OAuthAuth(
          {
            clientId: CLIENT_ID,
            key: { key: rsa.privateKey, alg: 'RS256' },
            scopes: ['okta.logs.read'],
            dpop: 'auto',
            now: () => now,
          },
          transport,
        ),
      tls: { ca: pki.caCert, verifyCertificate: true, verifyHostname: true },
      requestTimeoutMs: 10_000,
      userAgent: 'oktail-test',
    });
    const url = client.resolve('/api/v1/logs?limit=1');
    const fetch = () => client!.fetch(url, AbortSignal.timeout(10_000));
    await fetch();
    now += 80_000;
    await fetch();
    expect(oauth.stats.grants).toHaveLength(1);
    now += 10_500; // past 90 % of the lifetime: renewed before Okta would refuse it
    await fetch();
    await fetch();
    expect(oauth.stats.grants).toHaveLength(2);
  });

  it.each([
    ['invalid_client', 401, 'upload'],
    ['invalid_scope', 400, 'grant the okta.logs.read scope to the app'],
    ['unauthorized_client', 400, 'Client Credentials grant type'],
    ['invalid_dpop_proof', 400, 'DPoP'],
  ])(
    'halts on %s from the token endpoint, saying what to fix in the Admin Console',
    async (error, status, fix) => {
      const { oauth, fetch } = await setup({ requireDpop: false }, { dpop: false });
      oauth.failNextToken(error, status);
      const err = await failure(fetch());
      expect(isOktailError(err, 'OKTA_AUTH')).toBe(true);
      expect((err as OAuthTokenError).retryable).toBe(false);
      expect(err.message).toMatch(/^Authentication failed - check /);
      expect(err.message).toContain(fix);
      expect(err.message).toContain(`error=${error}`);
    },
  );

  it('answers the real checks: wrong key, missing scope, revoked client', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const wrongKey = await setup({ publicKey: other.publicKey });
    expect((await failure(wrongKey.fetch())).message).toContain('error=invalid_client');
    await client!.close();
    await emulator!.stop();

    const scopes = await setup({ scopes: ['okta.users.read'] });
    expect((await failure(scopes.fetch())).message).toContain('error=invalid_scope');
    await client!.close();
    await emulator!.stop();

    const revoked = await setup();
    await revoked.fetch();
    revoked.oauth.revokeClient(CLIENT_ID);
    const err = await failure(revoked.fetch());
    expect(isOktailError(err, 'OKTA_AUTH')).toBe(true);
    expect(err.message).toContain('error=invalid_client');
  });

  it('retries a token endpoint that fails with a 5xx', async () => {
    const { oauth, fetch } = await setup();
    oauth.failNextToken('temporarily_unavailable', 503);
    const err = await failure(fetch());
    expect(isOktailError(err, 'OKTA_FETCH_FAILED')).toBe(true);
    expect((err as OAuthTokenError).retryable).toBe(true);
    expect((await fetch()).status).toBe(200);
  });
});
