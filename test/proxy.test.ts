import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  collect,
  compareDelivery,
  readLines,
  runCli,
  secrets,
  spawnCli,
  startOrg,
  writeConfig,
  type TestOrg,
} from './support/harness.js';
import { oauthLines, startOAuthOrg } from './support/oauth.js';
import {
  freePort,
  requireTinyproxy,
  startTinyproxy,
  startTinyproxyAt,
  type Tinyproxy,
} from './support/tinyproxy.js';

let org: TestOrg | undefined;
let proxy: Tinyproxy | undefined;
afterEach(async () => {
  await proxy?.stop();
  await org?.stop();
  proxy = undefined;
  org = undefined;
});

beforeAll(() => requireTinyproxy());

const HOUR = 3600_000;
const since = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();
const USER = 'oktail';
const PASSWORD = 'proxy-pass-7Yq2wLx9';
secrets.add(PASSWORD);

/** Environment without any proxy variables of the machine running the tests. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    HTTPS_PROXY: '',
    https_proxy: '',
    HTTP_PROXY: '',
    http_proxy: '',
    NO_PROXY: '',
    no_proxy: '',
  };
  return { ...env, OKTA_API_TOKEN: org!.token, ...extra };
}

const port = (o: TestOrg) => Number(o.domain.split(':').at(-1));
const tunnels = async (p: Tinyproxy, o: TestOrg) =>
  (await p.log()).split('\n').filter((l) => l.includes(`CONNECT 127.0.0.1:${port(o)}`)).length;

async function backlog(o: TestOrg) {
  o.emulator.appendEvents(1500, { publishedStart: Date.now() - HOUR });
}

// Several real CLI runs per test, on a machine that may be busy: generous limits, progress-based waits.
describe('outbound proxy (tinyproxy)', { timeout: 120_000 }, () => {
  it('tunnels through a proxy without authentication', async () => {
    org = await startOrg();
    proxy = await startTinyproxy({ connectPorts: [port(org)] });
    await backlog(org);
    const { file, out } = await writeConfig(org, {
      startFrom: since(2 * HOUR),
      top: ['proxy:', `  url: ${proxy.url()}`],
    });

    const result = await runCli(['run', '--once', '-c', file], { env: cleanEnv() });

    expect(result.code, result.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
    expect(await proxy.log()).toContain(`CONNECT 127.0.0.1:${port(org)}`);
  });

  it('tunnels with basic auth, keeping the password out of output and validate --print', async () => {
    org = await startOrg();
    proxy = await startTinyproxy({
      connectPorts: [port(org)],
      basicAuth: { user: USER, password: PASSWORD },
    });
    await backlog(org);
    const { file, out } = await writeConfig(org, {
      startFrom: since(2 * HOUR),
      top: ['proxy:', `  url: "http://${USER}:\${PROXY_PASS}@127.0.0.1:${proxy.port}"`],
    });
    const env = cleanEnv({ PROXY_PASS: PASSWORD });

    const result = await runCli(['run', '--once', '-c', file], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();

    const printed = await runCli(['validate', '--print', '-c', file], { env });
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toContain(`"url": "http://${USER}:[redacted]@127.0.0.1:${proxy.port}"`);

    const check = await runCli(['check', '-c', file], { env });
    expect(check.code, check.stdout).toBe(0);
    expect(check.stdout).toContain(`Proxy: http://127.0.0.1:${proxy.port} (CONNECT tunnel`);
  });

  it('halts with "proxy authentication failed" (exit 3) when the proxy refuses the credentials sent', async () => {
    org = await startOrg();
    proxy = await startTinyproxy({
      connectPorts: [port(org)],
      basicAuth: { user: USER, password: PASSWORD },
    });
    await backlog(org);
    const { file } = await writeConfig(org, {
      startFrom: since(2 * HOUR),
      top: ['proxy:', `  url: "http://${USER}:\${PROXY_PASS}@127.0.0.1:${proxy.port}"`],
    });
    const wrong = `${PASSWORD}-wrong`;
    secrets.add(wrong);

    const result = await runCli(['run', '--once', '-c', file], { env: cleanEnv({ PROXY_PASS: wrong }) });

    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`proxy authentication failed at http://127.0.0.1:${proxy.port}`);
    expect(org.emulator.stats().requests).toBe(0);
  });

  it('reports a proxy that wants credentials, and one that refuses the tunnel, as retryable failures naming it', async () => {
    org = await startOrg();
    proxy = await startTinyproxy({
      connectPorts: [port(org)],
      basicAuth: { user: USER, password: PASSWORD },
    });
    const noCredentials = await writeConfig(org, { top: ['proxy:', `  url: ${proxy.url()}`] });
    const asked = await runCli(['check', '-c', noCredentials.file], { env: cleanEnv() });
    expect(asked.code).toBe(1);
    expect(asked.stdout).toContain(`proxy http://127.0.0.1:${proxy.port} requires authentication (407)`);
    await proxy.stop();

    // Not allowed to CONNECT to the org's port: tinyproxy answers 403.
    proxy = await startTinyproxy({ connectPorts: [443] });
    const refused = await writeConfig(org, { top: ['proxy:', `  url: ${proxy.url()}`] });
    const result = await runCli(['check', '-c', refused.file], { env: cleanEnv() });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      `proxy http://127.0.0.1:${proxy.port} refused the tunnel (CONNECT answered 403)`,
    );
    expect(org.emulator.stats().requests).toBe(0);
    await proxy.stop();

    // The proxy cannot reach the org: tinyproxy answers the CONNECT with a 5xx.
    proxy = await startTinyproxy({ connectPorts: [port(org)] });
    await org.emulator.stop();
    const unreachable = await writeConfig(org, { top: ['proxy:', `  url: ${proxy.url()}`] });
    const fivexx = await runCli(['check', '-c', unreachable.file], { env: cleanEnv() });
    expect(fivexx.code).toBe(1);
    expect(fivexx.stdout).toMatch(
      new RegExp(
        `proxy http://127\\.0\\.0\\.1:${proxy.port} refused the tunnel \\(CONNECT answered 5\\d\\d\\)`,
      ),
    );
  });

  it('keeps retrying while the proxy is down, naming it, and delivers once it is up', async () => {
    org = await startOrg();
    await backlog(org);
    const proxyPort = await freePort();
    const { file, out } = await writeConfig(org, {
      startFrom: since(2 * HOUR),
      top: ['proxy:', `  url: http://127.0.0.1:${proxyPort}`],
      backoffMs: 200,
    });
    const check = await runCli(['check', '-c', file], { env: cleanEnv() });
    expect(check.stdout).toContain(
      `Proxy: Failed to fetch Okta system logs. Status=none (proxy http://127.0.0.1:${proxyPort} is unreachable (ECONNREFUSED))`,
    );

    const started = performance.now();
    const child = spawnCli(['run', '--once', '--log-format', 'json', '-c', file], cleanEnv());
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 30_000;
    while ((stderr.match(/is unreachable \(ECONNREFUSED\)/g) ?? []).length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((stderr.match(/is unreachable \(ECONNREFUSED\)/g) ?? []).length).toBeGreaterThanOrEqual(2);
    // The proxy comes up on the configured port: the same run goes on and finishes.
    proxy = await startTinyproxyOn(org, proxyPort);
    const result = await collect(child, started, 60_000);
    expect(result.code, stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
  });

  it('goes direct for hosts in no_proxy (names, CIDR blocks), and url "" turns the environment off', async () => {
    org = await startOrg();
    await backlog(org);
    const dead = `http://127.0.0.1:${await freePort()}`;
    for (const top of [
      ['proxy:', `  url: ${dead}`, '  no_proxy: [10.0.0.0/8, 127.0.0.0/8]'],
      ['proxy:', `  url: ${dead}`, '  no_proxy: [localhost, "127.0.0.1"]'],
      ['proxy:', '  url: ""'],
    ]) {
      const { file } = await writeConfig(org, { top });
      const result = await runCli(['check', '-c', file], { env: cleanEnv({ HTTPS_PROXY: dead }) });
      expect(result.code, result.stdout).toBe(0);
      expect(result.stdout).not.toContain('Proxy:');
    }
  });

  it('follows HTTPS_PROXY / https_proxy / NO_PROXY from the environment when no proxy block is given', async () => {
    org = await startOrg();
    proxy = await startTinyproxy({ connectPorts: [port(org)] });
    await backlog(org);
    const { file, out } = await writeConfig(org, { startFrom: since(2 * HOUR) });

    const viaEnv = await runCli(['run', '--once', '-c', file], {
      env: cleanEnv({ HTTPS_PROXY: proxy.url() }),
    });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
    expect(await tunnels(proxy, org)).toBeGreaterThan(0);

    const lower = await runCli(['check', '-c', file], { env: cleanEnv({ https_proxy: proxy.url() }) });
    expect(lower.code, lower.stdout).toBe(0);
    expect(lower.stdout).toContain(`Proxy: http://127.0.0.1:${proxy.port}`);
    const tunnelled = await tunnels(proxy, org);

    const bypass = await runCli(['check', '-c', file], {
      env: cleanEnv({ HTTPS_PROXY: proxy.url(), NO_PROXY: 'example.com,127.0.0.1' }),
    });
    expect(bypass.code, bypass.stdout).toBe(0);
    expect(bypass.stdout).not.toContain('Proxy:');
    expect(await tunnels(proxy, org)).toBe(tunnelled);
  });

  it('keeps mTLS to the org end to end through the tunnel', async () => {
    org = await startOrg({ mtls: true });
    proxy = await startTinyproxy({ connectPorts: [port(org)] });
    await backlog(org);
    const { file, out } = await writeConfig(org, {
      startFrom: since(2 * HOUR),
      top: ['proxy:', `  url: ${proxy.url()}`],
      tls: {
        enabled: true,
        ca_file: org.files.caFile,
        crt_file: org.files.clientCertFile,
        key_file: org.files.clientEncryptedKeyFile,
        key_pass: '${KEY_PASS}',
      },
    });

    const result = await runCli(['run', '--once', '-c', file], {
      env: cleanEnv({ KEY_PASS: org.pki.client.passphrase }),
    });

    expect(result.code, result.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
    expect(await proxy.log()).toContain(`CONNECT 127.0.0.1:${port(org)}`);
  });

  it("sends the OAuth token request through the source's own proxy too", async () => {
    const started = await startOAuthOrg();
    org = started.org;
    proxy = await startTinyproxy({ connectPorts: [port(org)] });
    await backlog(org);
    const dead = `http://127.0.0.1:${await freePort()}`;
    // The global proxy is down; the source's own block replaces it.
    const { file, out } = await writeConfig(org, {
      startFrom: since(2 * HOUR),
      top: ['proxy:', `  url: ${dead}`],
      auth: oauthLines(started.key.pkcs8File),
      extraSource: ['proxy:', `  url: ${proxy.url()}`],
    });
    const result = await runCli(['run', '--once', '-c', file], { env: cleanEnv() });
    expect(result.code, result.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
    expect(await proxy.log()).toContain(`CONNECT 127.0.0.1:${port(org)}`);

    // With the dead proxy, not even the token request reaches the org.
    const before = org.emulator.oauth!.stats.tokenRequests;
    const direct = await writeConfig(org, {
      top: ['proxy:', `  url: ${dead}`],
      auth: oauthLines(started.key.pkcs8File),
    });
    const check = await runCli(['check', '-c', direct.file], { env: cleanEnv() });
    expect(check.code).toBe(1);
    expect(check.stdout).toContain('is unreachable (ECONNREFUSED)');
    expect(org.emulator.oauth!.stats.tokenRequests).toBe(before);
  });
});

function startTinyproxyOn(o: TestOrg, wanted: number): Promise<Tinyproxy> {
  return startTinyproxyAt(wanted, { connectPorts: [port(o)] });
}
