import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { OAuthServer } from './oauth.js';

const ORIGIN = 'https://127.0.0.1:8443';
const TOKEN_URL = `${ORIGIN}/oauth2/v1/token`;
const API = new URL(`${ORIGIN}/api/v1/logs?limit=10`);
const CLIENT = '0oaEmulatorTest';
const app = generateKeyPairSync('rsa', { modulusLength: 2048 });

type Claims = Record<string, unknown>;

async function assertion(overrides: Claims = {}, key = app.privateKey): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: CLIENT,
    sub: CLIENT,
    aud: TOKEN_URL,
    iat: now,
    exp: now + 300,
    jti: randomUUID(),
    ...overrides,
  })
    .setProtectedHeader({ alg: 'RS256' })
    .sign(key);
}

const dpopKeys = await generateKeyPair('ES256');
const dpopJwk = await exportJWK(dpopKeys.publicKey);

async function proof(claims: Claims, jwk = dpopJwk, key = dpopKeys.privateKey): Promise<string> {
  return new SignJWT({ iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
    .sign(key);
}

function form(clientAssertion: string, scope = 'okta.logs.read'): URLSearchParams {
  return new URLSearchParams({
    grant_type: 'client_credentials',
    scope,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: clientAssertion,
  });
}

function server(requireDpop = true): OAuthServer {
  return new OAuthServer({ clients: [{ clientId: CLIENT, publicKey: app.publicKey, requireDpop }] });
}

async function tokenError(s: OAuthServer, f: URLSearchParams, headers: Record<string, string> = {}) {
  const answer = await s.token(f, headers, TOKEN_URL, Date.now());
  return {
    status: answer.status,
    ...(JSON.parse(answer.body.toString()) as { error?: string }),
    headers: answer.headers,
  };
}

/** A DPoP-bound access token, through the nonce dance. */
async function dpopToken(s: OAuthServer): Promise<string> {
  const answer = await s.token(
    form(await assertion()),
    { dpop: await proof({ htm: 'POST', htu: TOKEN_URL, nonce: s.nonce }) },
    TOKEN_URL,
    Date.now(),
  );
  expect(answer.status).toBe(200);
  return (JSON.parse(answer.body.toString()) as { access_token: string }).access_token;
}

const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

describe('emulated token endpoint', () => {
  it('checks the assertion: signature, iss/sub, aud, exp, and jti replay', async () => {
    const s = server(false);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect((await tokenError(s, form(await assertion({}, other)))).error).toBe('invalid_client');
    expect((await tokenError(s, form(await assertion({ sub: 'someone-else' })))).error).toBe(
      'invalid_client',
    );
    expect(
      (await tokenError(s, form(await assertion({ aud: `${ORIGIN}/oauth2/default/v1/token` })))).error,
    ).toBe('invalid_client');
    const now = Math.floor(Date.now() / 1000);
    expect((await tokenError(s, form(await assertion({ exp: now - 10 })))).error).toBe('invalid_client');
    expect((await tokenError(s, form(await assertion({ exp: now + 7200 })))).error).toBe('invalid_client');
    const once = await assertion();
    expect((await tokenError(s, form(once))).status).toBe(200);
    expect((await tokenError(s, form(once))).error).toBe('invalid_client');
    expect((await tokenError(s, form(await assertion(), 'okta.users.manage'))).error).toBe('invalid_scope');
  });

  it('wants DPoP with the current nonce when the app requires it', async () => {
    const s = server(true);
    expect((await tokenError(s, form(await assertion()))).error).toBe('invalid_dpop_proof');
    const noNonce = await tokenError(s, form(await assertion()), {
      dpop: await proof({ htm: 'POST', htu: TOKEN_URL }),
    });
    expect(noNonce.error).toBe('use_dpop_nonce');
    expect(noNonce.headers['DPoP-Nonce']).toBe(s.nonce);
    const wrongHtu = await tokenError(s, form(await assertion()), {
      dpop: await proof({ htm: 'POST', htu: `${ORIGIN}/other`, nonce: s.nonce }),
    });
    expect(wrongHtu.error).toBe('invalid_dpop_proof');
    await dpopToken(s);
  });
});

describe('emulated API checks of DPoP-bound tokens', () => {
  it('accepts a proper proof and refuses wrong htm, htu, ath, a replayed jti, and another key', async () => {
    const s = server(true);
    const token = await dpopToken(s);
    const htu = `${ORIGIN}/api/v1/logs`;
    const check = async (dpop: string, auth = `DPoP ${token}`) =>
      s.checkApi('GET', API, { authorization: auth, dpop }, Date.now());

    const good = await proof({ htm: 'GET', htu, ath: ath(token) });
    expect((await check(good)).ok).toBe(true);
    expect(await check(good)).toMatchObject({ ok: false, status: 401 }); // replayed jti
    expect(await check(await proof({ htm: 'POST', htu, ath: ath(token) }))).toMatchObject({ ok: false });
    expect(await check(await proof({ htm: 'GET', htu: `${htu}?limit=10`, ath: ath(token) }))).toMatchObject({
      ok: false,
    });
    expect(await check(await proof({ htm: 'GET', htu, ath: ath('another-token') }))).toMatchObject({
      ok: false,
    });
    const other = await generateKeyPair('ES256');
    const stolen = await proof(
      { htm: 'GET', htu, ath: ath(token) },
      await exportJWK(other.publicKey),
      other.privateKey,
    );
    expect(await check(stolen)).toMatchObject({ ok: false });
    // A DPoP-bound token presented as a bearer token.
    expect(await check(good, `Bearer ${token}`)).toMatchObject({ ok: false, status: 401 });
    expect(s.stats.apiRefusals).toEqual({ invalid_dpop_proof: 5, invalid_token: 1 });
  });

  it('asks for the API nonce with use_dpop_nonce when it is required', async () => {
    const s = new OAuthServer({ clients: [{ clientId: CLIENT, publicKey: app.publicKey }], apiNonce: true });
    const token = await dpopToken(s);
    const htu = `${ORIGIN}/api/v1/logs`;
    s.rotateNonce();
    const refused = await s.checkApi(
      'GET',
      API,
      {
        authorization: `DPoP ${token}`,
        dpop: await proof({ htm: 'GET', htu, ath: ath(token), nonce: 'stale' }),
      },
      Date.now(),
    );
    expect(refused).toMatchObject({ ok: false, status: 401 });
    expect(!refused.ok && refused.headers['WWW-Authenticate']).toContain('error="use_dpop_nonce"');
    expect(!refused.ok && refused.headers['DPoP-Nonce']).toBe(s.nonce);
  });
});
