import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';

/** PEM material for TLS tests: one CA signing a server and a client certificate, plus an unrelated CA. */
export interface TestPki {
  caCert: string;
  server: { cert: string; key: string };
  client: { cert: string; key: string; encryptedKey: string; passphrase: string };
  /** A CA that signed nothing here: trusting only it must make every handshake fail. */
  otherCaCert: string;
}

export interface TestPkiOptions {
  /** Names the server certificate is valid for; IP literals become IP SANs. */
  serverHosts?: string[];
}

export interface PkiFiles {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  clientEncryptedKeyFile: string;
  otherCaFile: string;
}

type CryptoKeyPair = webcrypto.CryptoKeyPair;
const subtle = webcrypto.subtle;
x509.cryptoProvider.set(webcrypto);

// P-256 keeps generation to a few milliseconds, so every test file can afford its own PKI.
const keyAlgorithm: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const signingAlgorithm: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

async function newKeys(): Promise<CryptoKeyPair> {
  return subtle.generateKey(keyAlgorithm, true, ['sign', 'verify']);
}

async function privateKeyPem(keys: CryptoKeyPair): Promise<string> {
  return toPem(await subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
}

function validity(): { notBefore: Date; notAfter: Date } {
  // Backdated so that a test running with a skewed clock, or on a machine whose clock lags, still accepts it.
  const now = Date.now();
  return { notBefore: new Date(now - 24 * 3600_000), notAfter: new Date(now + 30 * 24 * 3600_000) };
}

async function createCa(commonName: string): Promise<{ cert: x509.X509Certificate; keys: CryptoKeyPair }> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8)
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    name: `CN=${commonName}`,
    ...validity(),
    keys,
    signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

async function createLeaf(
  ca: { cert: x509.X509Certificate; keys: CryptoKeyPair },
  commonName: string,
  usage: x509.ExtendedKeyUsage,
  sans: x509.JsonGeneralName[],
): Promise<{ cert: string; key: string }> {
  const keys = await newKeys();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([usage], false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8)
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    subject: `CN=${commonName}`,
    issuer: ca.cert.subject,
    ...validity(),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm,
    extensions,
  });
  return { cert: cert.toString('pem') + '\n', key: await privateKeyPem(keys) };
}

/** Generates a fresh PKI in memory. Nothing touches the disk unless `writePki` is called. */
export async function createTestPki(options: TestPkiOptions = {}): Promise<TestPki> {
  const hosts = options.serverHosts ?? ['localhost', '127.0.0.1'];
  const [ca, other] = await Promise.all([createCa('oktail test CA'), createCa('oktail unrelated CA')]);
  const sans: x509.JsonGeneralName[] = hosts.map((h) => ({ type: isIP(h) === 0 ? 'dns' : 'ip', value: h }));
  const [server, client] = await Promise.all([
    createLeaf(ca, hosts[0] ?? 'localhost', x509.ExtendedKeyUsage.serverAuth, sans),
    createLeaf(ca, 'oktail test client', x509.ExtendedKeyUsage.clientAuth, []),
  ]);
  const passphrase = randomBytes(12).toString('base64url');
  const encryptedKey = createPrivateKey(client.key)
    .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase })
    .toString();
  return {
    caCert: ca.cert.toString('pem') + '\n',
    server,
    client: { ...client, encryptedKey, passphrase },
    otherCaCert: other.cert.toString('pem') + '\n',
  };
}

/** Writes the PKI as files (keys readable by the owner only) and returns their paths. */
export async function writePki(pki: TestPki, dir: string): Promise<PkiFiles> {
  await mkdir(dir, { recursive: true });
  const files: PkiFiles = {
    dir,
    caFile: join(dir, 'ca.pem'),
    serverCertFile: join(dir, 'server.pem'),
    serverKeyFile: join(dir, 'server.key'),
    clientCertFile: join(dir, 'client.pem'),
    clientKeyFile: join(dir, 'client.key'),
    clientEncryptedKeyFile: join(dir, 'client.enc.key'),
    otherCaFile: join(dir, 'other-ca.pem'),
  };
  const contents: [string, string, number][] = [
    [files.caFile, pki.caCert, 0o644],
    [files.serverCertFile, pki.server.cert, 0o644],
    [files.serverKeyFile, pki.server.key, 0o600],
    [files.clientCertFile, pki.client.cert, 0o644],
    [files.clientKeyFile, pki.client.key, 0o600],
    [files.clientEncryptedKeyFile, pki.client.encryptedKey, 0o600],
    [files.otherCaFile, pki.otherCaCert, 0o644],
  ];
  for (const [path, text, mode] of contents) {
    await writeFile(path, text, { mode });
    // writeFile's mode applies only on creation; an existing file keeps its old permissions otherwise.
    await chmod(path, mode);
  }
  return files;
}
