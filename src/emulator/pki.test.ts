import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OktaEmulator } from './emulator.js';
import { createTestPki, writePki, type TestPki } from './pki.js';

let pki: TestPki;

beforeAll(async () => {
  pki = await createTestPki();
});

async function withEmulator<T>(
  options: { requireClientCert: boolean; host?: 'localhost' },
  fn: (origin: string, emulator: OktaEmulator) => Promise<T>,
): Promise<T> {
  const emulator = new OktaEmulator({
    tls: { ...pki.server, ca: pki.caCert, requireClientCert: options.requireClientCert },
    tokens: ['t'],
    host: options.host,
  });
  const { origin } = await emulator.start();
  try {
    return await fn(origin, emulator);
  } finally {
    await emulator.stop();
  }
}

async function get(origin: string, agent: Agent): Promise<number> {
  try {
    const res = await request(`${origin}/api/v1/logs`, {
      dispatcher: agent,
      headers: { authorization: 'SSWS t' },
    });
    await res.body.dump();
    return res.statusCode;
  } finally {
    await agent.close();
  }
}

describe('createTestPki', () => {
  it('issues a server certificate for localhost and 127.0.0.1 signed by the CA', () => {
    const ca = new X509Certificate(pki.caCert);
    const server = new X509Certificate(pki.server.cert);
    expect(ca.ca).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(server.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
  });

  it('issues a client certificate with the clientAuth usage and an encrypted copy of its key', () => {
    const client = new X509Certificate(pki.client.cert);
    expect(client.verify(new X509Certificate(pki.caCert).publicKey)).toBe(true);
    expect(client.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(pki.client.encryptedKey).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    expect(pki.client.passphrase.length).toBeGreaterThan(8);
  });

  it('takes IP and DNS names for the server certificate', async () => {
    const custom = await createTestPki({ serverHosts: ['emulator.test', '::1'] });
    expect(new X509Certificate(custom.server.cert).subjectAltName).toBe(
      'DNS:emulator.test, IP Address:0:0:0:0:0:0:0:1',
    );
  });

  it('makes an unrelated CA that did not sign the server certificate', () => {
    expect(new X509Certificate(pki.server.cert).verify(new X509Certificate(pki.otherCaCert).publicKey)).toBe(
      false,
    );
  });
});

describe('TLS handshakes with the emulator', () => {
  it('succeeds when the client trusts the test CA', async () => {
    await withEmulator({ requireClientCert: false }, async (origin) => {
      expect(await get(origin, new Agent({ connect: { ca: pki.caCert } }))).toBe(200);
    });
  });

  it('succeeds against the localhost name', async () => {
    await withEmulator({ requireClientCert: false, host: 'localhost' }, async (origin) => {
      expect(origin).toMatch(/^https:\/\/localhost:\d+$/);
      expect(await get(origin, new Agent({ connect: { ca: pki.caCert } }))).toBe(200);
    });
  });

  it('fails when the client trusts only an unrelated CA', async () => {
    await withEmulator({ requireClientCert: false }, async (origin) => {
      await expect(get(origin, new Agent({ connect: { ca: pki.otherCaCert } }))).rejects.toThrow();
    });
  });

  it('accepts mTLS with the passphrase-protected client key', async () => {
    await withEmulator({ requireClientCert: true }, async (origin) => {
      const agent = new Agent({
        connect: {
          ca: pki.caCert,
          cert: pki.client.cert,
          key: pki.client.encryptedKey,
          passphrase: pki.client.passphrase,
        },
      });
      expect(await get(origin, agent)).toBe(200);
    });
  });

  it('refuses a client without a certificate when mTLS is required', async () => {
    await withEmulator({ requireClientCert: true }, async (origin, emulator) => {
      await expect(get(origin, new Agent({ connect: { ca: pki.caCert } }))).rejects.toThrow();
      expect(emulator.requests).toHaveLength(0);
    });
  });

  it('refuses a client certificate from another CA', async () => {
    const stranger = await createTestPki();
    await withEmulator({ requireClientCert: true }, async (origin) => {
      const agent = new Agent({
        connect: { ca: pki.caCert, cert: stranger.client.cert, key: stranger.client.key },
      });
      await expect(get(origin, agent)).rejects.toThrow();
    });
  });
});

describe('writePki', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oktail-pki-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every file and keeps private keys owner-only', async () => {
    const files = await writePki(pki, dir);
    expect(await readFile(files.caFile, 'utf8')).toBe(pki.caCert);
    expect(await readFile(files.clientEncryptedKeyFile, 'utf8')).toBe(pki.client.encryptedKey);
    expect(await readFile(files.otherCaFile, 'utf8')).toBe(pki.otherCaCert);
    for (const key of [files.serverKeyFile, files.clientKeyFile, files.clientEncryptedKeyFile]) {
      expect((await stat(key)).mode & 0o777).toBe(0o600);
    }
    const paths: string[] = Object.values(files);
    expect(paths.filter((p) => p.startsWith(dir + '/'))).toHaveLength(7);
  });
});
