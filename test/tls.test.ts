import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  HOUR,
  ago,
  compareDelivery,
  readLines,
  runCli,
  useOrg,
  writeConfig,
  type TestOrg,
} from './support/harness.js';

let org: TestOrg | undefined;
const startOrg = useOrg();

async function check(tls: Record<string, unknown>) {
  const { file } = await writeConfig(org!, { tls });
  return runCli(['check', '-c', file], { env: org!.env });
}

describe('TLS', () => {
  it('collects over mTLS with an encrypted client key', async () => {
    org = await startOrg({ mtls: true });
    org.emulator.appendEvents(1200, { publishedStart: Date.now() - HOUR });
    const { file, out } = await writeConfig(org, {
      startFrom: ago(2 * HOUR),
      tls: {
        enabled: true,
        ca_file: org.files.caFile,
        crt_file: org.files.clientCertFile,
        key_file: org.files.clientEncryptedKeyFile,
        key_pass: '${KEY_PASS}',
      },
    });
    const result = await runCli(['run', '--once', '-c', file], {
      env: { OKTA_API_TOKEN: org.token, KEY_PASS: org.pki.client.passphrase },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(compareDelivery(await readLines(out), org.emulator.allEvents())).toBeNull();
  });

  it('is refused by an mTLS org without a client certificate, and says it was TLS', async () => {
    org = await startOrg({ mtls: true });
    const result = await check({ enabled: true, ca_file: org.files.caFile });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('set tls.crt_file and tls.key_file');
    expect(org.emulator.stats().tlsErrors).toBeGreaterThan(0);
  });

  it('rejects a server certificate from an unknown CA', async () => {
    org = await startOrg();
    const result = await check({ enabled: true, ca_file: org.files.otherCaFile });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/TLS: handshake with .* failed/);
    expect(org.emulator.stats().requests).toBe(0);
  });

  it('rejects the emulator under the default trust store (tls disabled)', async () => {
    org = await startOrg();
    const result = await check({ enabled: false });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/TLS: handshake/);
  });

  it('checks the certificate name unless verify_hostname is false', async () => {
    // The certificate names only okta.test, while the collector connects to 127.0.0.1.
    org = await startOrg({ pki: { serverHosts: ['okta.test'] } });
    const strict = await check({ enabled: true, ca_file: org.files.caFile, verify_hostname: true });
    expect(strict.code).toBe(1);
    expect(strict.stdout).toMatch(/TLS: .*ERR_TLS_CERT_ALTNAME_INVALID/);

    const lax = await check({ enabled: true, ca_file: org.files.caFile, verify_hostname: false });
    expect(lax.code, lax.stdout).toBe(0);
    expect(lax.stdout).toContain('HTTP: 200');
  });

  it('still verifies the chain when only the hostname check is off', async () => {
    org = await startOrg({ pki: { serverHosts: ['okta.test'] } });
    const result = await check({ enabled: true, ca_file: org.files.otherCaFile, verify_hostname: false });
    expect(result.code).toBe(1);
  });
});

describe('oktail check', () => {
  it('reports every layer and the rate-limit headroom of a healthy org', async () => {
    org = await startOrg({ rateLimit: { limit: 50 } });
    const result = await check({ enabled: true, ca_file: org.files.caFile });
    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout).toContain('DNS: 127.0.0.1 resolves to 127.0.0.1');
    expect(result.stdout).toContain('HTTP: 200');
    expect(result.stdout).toMatch(/Rate limit: 49 of 50 requests left in this window, resets in \d+ s/);
    expect(org.emulator.requests[0]!.query).toMatchObject({ limit: '1' });
  });

  it('explains a rejected token with the exit code for authentication failures', async () => {
    org = await startOrg();
    const { file } = await writeConfig(org);
    const result = await runCli(['check', '-c', file], { env: { OKTA_API_TOKEN: 'not-the-token' } });
    expect(result.code).toBe(3);
    expect(result.stdout).toContain(
      'HTTP: 401: Authentication failed - check OKTA_API_TOKEN (errorCode=E0000011',
    );
    expect(result.stdout).toContain('Hint: the token is invalid');
  });

  it('names DNS when the org host does not resolve', async () => {
    org = await startOrg();
    const { file } = await writeConfig(org);
    await writeFile(
      file,
      (await readFile(file, 'utf8')).replace(/domain: ".*"/, 'domain: "no-such-org.invalid"'),
    );
    const result = await runCli(['check', '-c', file], { env: org.env });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/DNS: cannot resolve no-such-org\.invalid/);
  });

  it('names TCP when nothing listens on the port', async () => {
    org = await startOrg();
    const { file } = await writeConfig(org);
    await org.emulator.stop();
    const result = await runCli(['check', '-c', file], { env: org.env });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/TCP: cannot connect to .*ECONNREFUSED/);
  });
});
