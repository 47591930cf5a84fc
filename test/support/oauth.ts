import { createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { OAuthEmulatorOptions } from '../../src/emulator/oauth.js';
import { secrets, startOrg, type TestOrg } from './harness.js';

export interface AppKey {
  kind: 'rsa' | 'ec';
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** PKCS#8 PEM. */
  pkcs8File: string;
  /** PKCS#1 (RSA) or SEC1 (EC) PEM. */
  traditionalFile: string;
  /** Encrypted PKCS#8 PEM and its passphrase. */
  encryptedFile: string;
  passphrase: string;
  /** Private JWK with a kid. */
  jwkFile: string;
  kid: string;
}

/** A service app's key pair in every file format oktail reads; the private parts are test secrets. */
export async function createAppKey(dir: string, kind: 'rsa' | 'ec', name = kind): Promise<AppKey> {
  const { privateKey } =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const folder = join(dir, 'keys');
  await mkdir(folder, { recursive: true });
  const passphrase = `pass-${randomBytes(9).toString('base64url')}`;
  const kid = `kid-${name}`;
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const traditional = privateKey.export({ type: kind === 'rsa' ? 'pkcs1' : 'sec1', format: 'pem' }) as string;
  const encrypted = privateKey.export({
    type: 'pkcs8',
    format: 'pem',
    cipher: 'aes-256-cbc',
    passphrase,
  }) as string;
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid };
  const files = {
    pkcs8File: join(folder, `${name}-pkcs8.pem`),
    traditionalFile: join(folder, `${name}-traditional.pem`),
    encryptedFile: join(folder, `${name}-encrypted.pem`),
    jwkFile: join(folder, `${name}.jwk.json`),
  };
  await writeFile(files.pkcs8File, pkcs8, { mode: 0o600 });
  await writeFile(files.traditionalFile, traditional, { mode: 0o600 });
  await writeFile(files.encryptedFile, encrypted, { mode: 0o600 });
  await writeFile(files.jwkFile, JSON.stringify(jwk), { mode: 0o600 });
  secrets.add(passphrase);
  // A line from the middle of the key: enough to recognise it anywhere.
  secrets.add(pkcs8.split('\n')[1]!);
  secrets.add((jwk as { d: string }).d);
  return { kind, privateKey, publicKey: createPublicKey(privateKey), ...files, passphrase, kid };
}

export const CLIENT_ID = '0oa1b2c3d4e5f6g7h8i9';

/** An org whose token endpoint knows one service app; every access token it issues is a test secret. */
export async function startOAuthOrg(
  options: Partial<Omit<OAuthEmulatorOptions, 'clients'>> & {
    kind?: 'rsa' | 'ec';
    requireDpop?: boolean;
    kid?: boolean;
    latencyMs?: number;
  } = {},
): Promise<{ org: TestOrg; key: AppKey }> {
  const { kind = 'rsa', requireDpop = true, kid = false, latencyMs, ...oauth } = options;
  const org = await startOrg({
    ...(latencyMs === undefined ? {} : { latencyMs }),
    oauth: {
      ...oauth,
      clients: [],
      onIssue: (token) => secrets.add(token),
    },
  });
  const key = await createAppKey(org.dir, kind);
  org.emulator.oauth!.register({
    clientId: CLIENT_ID,
    publicKey: key.publicKey,
    requireDpop,
    ...(kid ? { kid: key.kid } : {}),
  });
  return { org, key };
}

/** `auth:` lines for writeConfig. */
export function oauthLines(keyFile: string, extra: string[] = []): string[] {
  return [
    'strategy: oauth2',
    `client_id: ${CLIENT_ID}`,
    `private_key_file: ${JSON.stringify(keyFile)}`,
    ...extra,
  ];
}
