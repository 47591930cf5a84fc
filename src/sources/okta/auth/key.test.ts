import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOktailError } from '../../../core/errors.js';
import { loadSigningKey } from './key.js';

let dir: string;
const AT = 'sources.okta.auth.private_key_file';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oktail-key-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadSigningKey', () => {
  it('reads RSA as PKCS#8 and PKCS#1, EC as SEC1, and picks the algorithm', async () => {
    const pkcs8 = await file('a.pem', rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const pkcs1 = await file('b.pem', rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string);
    const sec1 = await file('c.pem', ec384.privateKey.export({ type: 'sec1', format: 'pem' }) as string);
    expect((await loadSigningKey(pkcs8, undefined, AT)).alg).toBe('RS256');
    expect((await loadSigningKey(pkcs1, undefined, AT)).alg).toBe('RS256');
    expect((await loadSigningKey(sec1, undefined, AT)).alg).toBe('ES384');
  });

  it('decrypts an encrypted PEM, and names the key path (not the passphrase) when it is wrong or missing', async () => {
    const pem = rsa.privateKey.export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'right-pass',
    });
    const path = await file('enc.pem', pem as string);
    expect((await loadSigningKey(path, 'right-pass', AT)).alg).toBe('RS256');
    const wrong = await failure(loadSigningKey(path, 'wrong-pass-xyz', AT));
    expect(isOktailError(wrong, 'CONFIG_INVALID')).toBe(true);
    expect(wrong.message).toBe(
      `${AT}: cannot load the private key in ${path}: wrong auth.private_key_pass, or a damaged key`,
    );
    expect((await failure(loadSigningKey(path, undefined, AT))).message).toBe(
      `${AT}: ${path} is encrypted; set auth.private_key_pass`,
    );
  });

  it('reads a private JWK with its kid, and refuses a public one', async () => {
    const jwk = { ...ec384.privateKey.export({ format: 'jwk' }), kid: 'k1' };
    expect(await loadSigningKey(await file('k.json', JSON.stringify(jwk)), undefined, AT)).toMatchObject({
      alg: 'ES384',
      kid: 'k1',
    });
    const pub = await file('p.json', JSON.stringify(ec384.publicKey.export({ format: 'jwk' })));
    expect((await failure(loadSigningKey(pub, undefined, AT))).message).toContain('is a public JWK');
  });

  it('refuses keys Okta does not accept and files that are not keys', async () => {
    const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect((await failure(loadSigningKey(await file('ed.pem', ed), undefined, AT))).message).toContain(
      'Okta accepts RSA or EC',
    );
    expect((await failure(loadSigningKey(await file('x.txt', 'hello'), undefined, AT))).message).toContain(
      'neither a PEM private key nor a JWK',
    );
    expect((await failure(loadSigningKey(join(dir, 'none.pem'), undefined, AT))).message).toBe(
      `${AT}: cannot read ${join(dir, 'none.pem')} (ENOENT)`,
    );
  });
});
