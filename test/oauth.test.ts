import { afterEach, describe, expect, it } from 'vitest';
import {
  compareDelivery,
  readLines,
  readState,
  runCli,
  writeConfig,
  type TestOrg,
} from './support/harness.js';
import { CLIENT_ID, oauthLines, startOAuthOrg } from './support/oauth.js';

let org: TestOrg | undefined;
afterEach(async () => {
  await org?.stop();
  org = undefined;
});

const HOUR = 3600_000;
const since = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();
const apiRequests = (o: TestOrg) => o.emulator.requests.filter((r) => r.path === '/api/v1/logs');

// Several real CLI runs per test, on a machine that may be busy: generous limits, progress-based waits.
describe('oktail with an OAuth 2.0 service app', { timeout: 120_000 }, () => {
  it('collects with an RSA key and DPoP negotiated on demand; check reports strategy, scopes and DPoP', async () => {
    const started = await startOAuthOrg({ kind: 'rsa', requireDpop: true });
    org = started.org;
    org.emulator.appendEvents(2500, { publishedStart: Date.now() - HOUR, seed: 3 });
    const { file, out } = await writeConfig(org, {
      startFrom: since(2 * HOUR),
      auth: oauthLines(started.key.pkcs8File),
    });

    const result = await runCli(['run', '--once', '-c', file]);

    expect(result.code, result.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
    const oauth = org.emulator.oauth!;
    // One token for the whole backlog, bound to the DPoP key; every page request carried a proof.
    expect(oauth.stats.grants).toHaveLength(1);
    expect(oauth.stats.grants[0]?.dpop).toBe(true);
    expect(apiRequests(org).every((r) => r.oauthClient === CLIENT_ID && r.status === 200)).toBe(true);
    await readState(org); // checked for secrets

    const check = await runCli(['check', '-c', file]);
    expect(check.code, check.stdout).toBe(0);
    expect(check.stdout).toContain(
      'Auth: oauth2 (client credentials, private_key_jwt); granted scopes: okta.logs.read; DPoP: negotiated',
    );
  });

  it('collects with an EC key (SEC1 PEM) and DPoP always on, through a nonce rotation mid-run', async () => {
    const started = await startOAuthOrg({ kind: 'ec', requireDpop: false, apiNonce: true });
    org = started.org;
    org.emulator.appendEvents(4500, { publishedStart: Date.now() - HOUR });
    // The nonce changes after the second page, without being announced: one use_dpop_nonce retry.
    org.emulator.oauth!.rotateNonceAfter(2, { announce: false });
    const { file, out } = await writeConfig(org, {
      startFrom: since(2 * HOUR),
      auth: oauthLines(started.key.traditionalFile, ['dpop: true']),
    });

    const result = await runCli(['run', '--once', '-c', file]);

    expect(result.code, result.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
    expect(org.emulator.oauth!.stats.apiRefusals).toEqual({ use_dpop_nonce: 1 });
    expect(org.emulator.oauth!.stats.grants).toHaveLength(1);
  });

  it('reads an encrypted PEM with its passphrase, a PKCS#1 PEM, and a JWK whose kid the app checks', async () => {
    const started = await startOAuthOrg({ kind: 'rsa', requireDpop: false, kid: true });
    org = started.org;
    const { key } = started;
    org.emulator.appendEvents(1500, { publishedStart: Date.now() - HOUR });
    const variants = [
      {
        lines: oauthLines(key.encryptedFile, ['private_key_pass: ${OKTA_KEY_PASS}', `key_id: ${key.kid}`]),
        env: { OKTA_KEY_PASS: key.passphrase },
      },
      {
        lines: oauthLines(key.traditionalFile, [`key_id: ${key.kid}`, 'dpop: false']),
        env: {} as Record<string, string>,
      },
      // The kid comes from the JWK file itself.
      { lines: oauthLines(key.jwkFile), env: {} as Record<string, string> },
    ];
    for (const [i, variant] of variants.entries()) {
      org.emulator.appendEvents(10 * (i + 1));
      const { file, out } = await writeConfig(org, { startFrom: since(2 * HOUR), auth: variant.lines });
      const result = await runCli(['run', '--once', '-c', file], { env: variant.env });
      expect(result.code, result.stderr).toBe(0);
      expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
    }
    expect(org.emulator.oauth!.stats.grants).toHaveLength(3);
    expect(org.emulator.oauth!.stats.grants.every((g) => !g.dpop)).toBe(true);
  });

  it('renews a token that expires in the middle of a backfill: no gap, no duplicate, one refresh per expiry', async () => {
    const lifetimeMs = 3000;
    const started = await startOAuthOrg({ tokenLifetimeSecs: lifetimeMs / 1000, latencyMs: 300 });
    org = started.org;
    // 15 pages at 300 ms or more each: the backfill outlives at least one token.
    org.emulator.appendEvents(14_500, { publishedStart: Date.now() - HOUR, seed: 9 });
    const { file, out } = await writeConfig(org, {
      startFrom: since(2 * HOUR),
      auth: oauthLines(started.key.pkcs8File),
    });

    const result = await runCli(['run', '--once', '-c', file], { timeoutMs: 120_000 });

    expect(result.code, result.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
    const { grants, apiRefusals } = org.emulator.oauth!.stats;
    expect(grants.length).toBeGreaterThanOrEqual(2);
    // Renewed shortly before expiry, so normally Okta refuses nothing. On a busy machine a request sent
    // just before the renewal point can reach Okta after the token expired: an invalid_token the client
    // recovers from by renewing once. So: no other refusal, and at most one per renewal.
    const { invalid_token: expiredRefusals = 0, ...otherRefusals } = apiRefusals;
    expect(otherRefusals).toEqual({});
    expect(expiredRefusals).toBeLessThanOrEqual(grants.length - 1);
    // At most one token per expiry: each renewal only once the previous token neared its end (a gap may
    // be longer: a token is renewed when a request needs it), recovered refusals included.
    for (let i = 1; i < grants.length; i++) {
      expect(grants[i]!.at - grants[i - 1]!.at).toBeGreaterThanOrEqual(lifetimeMs / 2);
    }
    const pages = apiRequests(org).filter((r) => r.status === 200).length;
    expect(pages).toBe(15);
  });

  it('halts with exit 3 when the app is deactivated, keeping the checkpoint where it was', async () => {
    const started = await startOAuthOrg();
    org = started.org;
    org.emulator.appendEvents(1200, { publishedStart: Date.now() - HOUR });
    const { file, out } = await writeConfig(org, {
      startFrom: since(2 * HOUR),
      auth: oauthLines(started.key.pkcs8File),
    });
    expect((await runCli(['run', '--once', '-c', file])).code).toBe(0);
    const before = await readState(org);

    org.emulator.oauth!.revokeClient(CLIENT_ID);
    org.emulator.appendEvents(30);
    const result = await runCli(['run', '--once', '-c', file]);

    expect(result.code).toBe(3);
    expect(result.stderr).toContain('Authentication failed - check auth.client_id and auth.private_key_file');
    expect(result.stderr).toContain('error=invalid_client');
    expect(await readState(org)).toEqual(before);
    expect(await readLines(out)).toHaveLength(1200);
  });

  it('check names what to fix when the app lacks the okta.logs.read scope', async () => {
    const started = await startOAuthOrg();
    org = started.org;
    org.emulator.oauth!.setGrantedScopes(CLIENT_ID, ['okta.users.read']);
    const { file } = await writeConfig(org, { auth: oauthLines(started.key.pkcs8File) });

    const result = await runCli(['check', '-c', file]);

    expect(result.code).toBe(3);
    expect(result.stdout).toContain('grant the okta.logs.read scope to the app');
  });

  it('validate loads the key with its passphrase, names the key path on failure, and redacts the passphrase', async () => {
    const started = await startOAuthOrg();
    org = started.org;
    const { key } = started;
    const { file } = await writeConfig(org, {
      auth: oauthLines(key.encryptedFile, ['private_key_pass: ${OKTA_KEY_PASS}']),
    });

    const good = await runCli(['validate', '--print', '-c', file], {
      env: { OKTA_KEY_PASS: key.passphrase },
    });
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain('"private_key_pass": "[redacted]"');
    expect(good.stdout).toContain(`"private_key_file": ${JSON.stringify(key.encryptedFile)}`);

    const wrong = await runCli(['validate', '-c', file], { env: { OKTA_KEY_PASS: 'not-the-passphrase' } });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(
      `sources.okta.auth.private_key_file: cannot load the private key in ${key.encryptedFile}: wrong auth.private_key_pass`,
    );
    expect(wrong.stderr).not.toContain('not-the-passphrase');

    const missing = await writeConfig(org, { auth: oauthLines(`${key.encryptedFile}.gone`) });
    const gone = await runCli(['validate', '-c', missing.file]);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('sources.okta.auth.private_key_file: cannot read');
  });
});
