import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  logLines,
  startConsoleCollector,
  writeConsoleConfig,
  type ConsoleCollector,
} from './support/browser.js';
import {
  compareDelivery,
  completeLines,
  readLines,
  runCli,
  until,
  useChildren,
  useOrg,
} from './support/harness.js';
import { CLIENT_ID, startOAuthOrg } from './support/oauth.js';

const startOrg = useOrg();
const track = useChildren();
let collector: ConsoleCollector | undefined;

afterEach(async () => {
  if (collector && collector.proc.exitCode === null) {
    collector.proc.kill('SIGTERM');
    await collector.done.catch(() => {});
  }
  collector = undefined;
});

/** Signs in with the token URL (as a browser would, without following the redirect); returns the cookie. */
async function signIn(url: string): Promise<string> {
  const res = await fetch(url, { redirect: 'manual' });
  expect(res.status).toBe(303);
  expect(res.headers.get('location')).toBe('/sources');
  const cookie = res.headers.get('set-cookie') ?? '';
  expect(cookie).toMatch(/HttpOnly/);
  expect(cookie).toMatch(/SameSite=Strict/);
  return cookie.split(';')[0]!;
}

describe('console API', () => {
  it('answers 401 to every page and API call without a valid session, and to a wrong token', async () => {
    const org = await startOrg();
    const { file } = await writeConsoleConfig(org);
    collector = await startConsoleCollector(file, track);
    const { origin } = collector;

    for (const path of ['/api/sources', '/api/sources/okta', '/api/form']) {
      const res = await fetch(origin + path);
      expect(res.status, path).toBe(401);
    }
    expect((await fetch(`${origin}/sources`)).status).toBe(401);
    const post = await fetch(`${origin}/api/sources`, {
      method: 'POST',
      headers: { origin, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(post.status).toBe(401);
    expect(
      (await fetch(`${origin}/api/sources`, { headers: { cookie: 'oktail_session=1.forged' } })).status,
    ).toBe(401);
    const wrong = await fetch(`${origin}/?token=not-the-token`, { redirect: 'manual' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();

    const cookie = await signIn(collector.signIn);
    const ok = await fetch(`${origin}/api/sources`, { headers: { cookie } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ sources: [] });
  }, 120_000);

  it('keeps /ready in step with the sources it stops: a deleted halted source no longer holds it down', async () => {
    const org = await startOrg();
    const { file } = await writeConsoleConfig(org, ['api:', '  address: "127.0.0.1:0"']);
    // A source whose token Okta rejects: it halts, and /ready says so until the source is deleted.
    const yaml = (await readFile(file, 'utf8'))
      .replace(
        'sources: {}',
        [
          'sources:',
          '  okta:',
          '    type: okta',
          `    domain: "${org.domain}"`,
          '    auth:',
          '      token: "not-the-token"',
          '    tls:',
          '      enabled: true',
          `      ca_file: ${JSON.stringify(org.files.caFile)}`,
        ].join('\n'),
      )
      .replace('inputs: []', 'inputs: [okta]');
    await writeFile(file, yaml);
    collector = await startConsoleCollector(file, track);
    const c = collector;
    let api = '';
    await until(() => {
      const line = logLines(c.stderr()).find(
        (l) => l.msg === 'API listening for /metrics, /health and /ready.',
      );
      api = (line?.url as string | undefined) ?? '';
      return api !== '' && c.stderr().includes('OKTA_AUTH');
    }, 'the API address and the halt');
    const halted = await fetch(`${api}/ready`);
    expect(halted.status).toBe(503);
    expect(JSON.stringify(await halted.json())).toContain('okta');

    const cookie = await signIn(c.signIn);
    const del = await fetch(`${c.origin}/api/sources/okta?forget=true`, {
      method: 'DELETE',
      headers: { origin: c.origin, cookie },
    });
    expect(del.status).toBe(200);
    const ready = await fetch(`${api}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', sources: [] });
  }, 120_000);

  it('refuses a state-changing request from another origin (or none) with 403 and logs it', async () => {
    const org = await startOrg();
    const { file } = await writeConsoleConfig(org);
    collector = await startConsoleCollector(file, track);
    const { origin } = collector;
    const cookie = await signIn(collector.signIn);
    const before = await readFile(file, 'utf8');
    const body = JSON.stringify({
      name: 'okta',
      domain: org.domain,
      interval_secs: '60',
      sinks: ['archive'],
    });

    for (const headers of [{ origin: 'http://evil.example' }, {}] as Record<string, string>[]) {
      const res = await fetch(`${origin}/api/sources`, {
        method: 'POST',
        headers: { ...headers, cookie, 'content-type': 'application/json' },
        body,
      });
      expect(res.status).toBe(403);
    }
    const del = await fetch(`${origin}/api/sources/okta`, {
      method: 'DELETE',
      headers: { origin: 'http://127.0.0.1:1', cookie },
    });
    expect(del.status).toBe(403);
    expect(await readFile(file, 'utf8')).toBe(before);
    const refusals = logLines(collector.stderr()).filter(
      (l) => l.msg === 'Console: refused a cross-origin request.',
    );
    expect(refusals).toHaveLength(3);

    // The same request from the console's own origin gets through to validation.
    const same = await fetch(`${origin}/api/sources`, {
      method: 'POST',
      headers: { origin, cookie, 'content-type': 'application/json' },
      body,
    });
    expect(same.status).toBe(422);
    const answer = (await same.json()) as { problems: { field: string; message: string }[] };
    expect(answer.problems).toContainEqual({ field: 'token', message: 'is required' });
  }, 120_000);

  it('stores only the hash of the token (mode 0600), and rotating it ends every session', async () => {
    const org = await startOrg();
    const { file } = await writeConsoleConfig(org);
    collector = await startConsoleCollector(file, track);
    const token = new URL(collector.signIn).searchParams.get('token')!;
    const tokenFile = join(org.dir, 'data', 'console-token.json');
    const stored = await readFile(tokenFile, 'utf8');
    expect(stored).not.toContain(token);
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    const cookie = await signIn(collector.signIn);

    const rotated = await runCli(['console', 'token', '--rotate', '-c', file]);
    expect(rotated.code).toBe(0);
    const url = /^(http:\/\/\S+\/\?token=\S+)$/m.exec(rotated.stdout)?.[1];
    expect(url).toBeDefined();
    const fresh = new URL(url!).searchParams.get('token')!;
    expect(fresh).not.toBe(token);

    const { origin } = collector;
    expect((await fetch(`${origin}/api/sources`, { headers: { cookie } })).status).toBe(401);
    expect((await fetch(`${origin}/?token=${token}`, { redirect: 'manual' })).status).toBe(401);
    const again = await signIn(`${origin}/?token=${fresh}`);
    expect((await fetch(`${origin}/api/sources`, { headers: { cookie: again } })).status).toBe(200);
    // The token is logged once, at its making, and never again.
    expect(collector.stderr().split(token).length - 1).toBe(1);
    expect(collector.stderr()).not.toContain(fresh);
  }, 120_000);

  it('saves an OAuth 2.0 source that collects, and never sends the key password back', async () => {
    const { org, key } = await startOAuthOrg({ kind: 'rsa', requireDpop: true });
    try {
      org.emulator.appendEvents(1200, { publishedStart: Date.now() - 3600_000, seed: 12 });
      const { file, out } = await writeConsoleConfig(org);
      collector = await startConsoleCollector(file, track);
      const c = collector;
      const cookie = await signIn(c.signIn);
      const bodies: string[] = [];
      const call = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(c.origin + path, {
          method,
          headers: { origin: c.origin, cookie, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await res.text();
        bodies.push(text);
        return { status: res.status, data: JSON.parse(text) as Record<string, unknown> };
      };
      // The form as the browser sends it: with the built-in script it was prefilled with.
      const { script } = (await call('GET', '/api/form')).data;
      const form = {
        mode: 'create',
        script,
        name: 'okta',
        domain: org.domain,
        interval_secs: '60',
        start_from: new Date(Date.now() - 2 * 3600_000).toISOString(),
        strategy: 'oauth2',
        client_id: CLIENT_ID,
        private_key_file: key.encryptedFile,
        private_key_pass: key.passphrase,
        scopes: 'okta.logs.read',
        dpop: 'auto',
        tls_enabled: true,
        ca_file: org.files.caFile,
        sinks: ['archive'],
      };

      // A wrong passphrase is caught on Save, beside its field, and nothing is written.
      const before = await readFile(file, 'utf8');
      const wrong = await call('POST', '/api/sources', { ...form, private_key_pass: 'not-the-passphrase' });
      expect(wrong.status).toBe(422);
      expect(wrong.data.problems).toEqual([
        {
          field: 'private_key_pass',
          message: `cannot load the private key in ${key.encryptedFile}: wrong auth.private_key_pass, or a damaged key`,
        },
      ]);
      expect(await readFile(file, 'utf8')).toBe(before);

      const test = await call('POST', '/api/test', form);
      expect(test.data.ok, JSON.stringify(test.data)).toBe(true);
      expect(test.data.layers).toContainEqual({
        layer: 'Auth',
        ok: true,
        text: 'oauth2 (client credentials, private_key_jwt); granted scopes: okta.logs.read; DPoP: negotiated',
      });

      const saved = await call('POST', '/api/sources', form);
      expect(saved).toEqual({ status: 200, data: { ok: true, started: true, error: null } });
      const text = await readFile(file, 'utf8');
      expect(text).toContain('strategy: oauth2');
      expect(text).not.toContain(key.passphrase);
      const secret = join(org.dir, 'data', 'secrets', 'okta.private_key_pass');
      expect(text).toContain(`private_key_pass_file: data/secrets/okta.private_key_pass`);
      expect((await stat(secret)).mode & 0o777).toBe(0o600);

      await until(async () => {
        const { data } = await call('GET', '/api/sources');
        const okta = (data.sources as { name: string; events: number }[]).find((s) => s.name === 'okta');
        return (okta?.events ?? 0) >= 1200;
      }, 'the backlog collected');
      await until(async () => (await completeLines(out)).length >= 1200, 'the backlog in the sink');
      expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
      expect(org.emulator.oauth!.stats.grants.length).toBeGreaterThanOrEqual(1);

      const detail = await call('GET', '/api/sources/okta');
      expect(detail.data.form).toMatchObject({
        strategy: 'oauth2',
        client_id: CLIENT_ID,
        private_key_file: key.encryptedFile,
        private_key_pass_set: true,
      });
      for (const body of bodies) expect(body).not.toContain(key.passphrase);
      expect(c.stderr()).not.toContain(key.passphrase);
      expect(c.stderr()).toContain('auth.private_key_pass');
    } finally {
      await org.stop();
    }
  }, 120_000);

  it('refuses to start on a non-loopback address without console.tls', async () => {
    const org = await startOrg();
    const { file } = await writeConsoleConfig(org);
    const text = (await readFile(file, 'utf8')).replace('127.0.0.1:0', '0.0.0.0:0');
    await import('node:fs/promises').then((fs) => fs.writeFile(file, text));
    const result = await runCli(['run', '-c', file], { timeoutMs: 60_000 });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('console.tls');
    expect(result.stderr).toContain('not a loopback address');
  }, 120_000);
});
