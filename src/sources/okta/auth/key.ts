import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { OktailError } from '../../../core/errors.js';

export interface SigningKey {
  key: KeyObject;
  /** JWS algorithm that fits the key: RS256 for RSA, ES256/384/512 by curve. */
  alg: string;
  /** A `kid` found in a JWK file, used when auth.key_id is not set. */
  kid?: string;
}

const CURVE_ALG: Record<string, string> = {
  prime256v1: 'ES256',
  'P-256': 'ES256',
  secp384r1: 'ES384',
  'P-384': 'ES384',
  secp521r1: 'ES512',
  'P-521': 'ES512',
};

/**
 * Reads the app's private key: PEM (PKCS#8, PKCS#1 or SEC1; encrypted with `passphrase`) or a private
 * JWK in JSON. Errors name the config key and the file, never the key material or the passphrase.
 */
export async function loadSigningKey(
  path: string,
  passphrase: string | undefined,
  keyPath: string,
): Promise<SigningKey> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw keyError(keyPath, `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
  }
  let key: KeyObject;
  let kid: string | undefined;
  let jwkAlg: string | undefined;
  if (text.trimStart().startsWith('{')) {
    let jwk: Record<string, unknown>;
    try {
      jwk = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw keyError(keyPath, `${path} looks like JSON but does not parse`, err);
    }
    if (typeof jwk.d !== 'string') {
      throw keyError(keyPath, `${path} is a public JWK; oktail needs the private key (with "d")`);
    }
    try {
      key = createPrivateKey({ key: jwk as never, format: 'jwk' });
    } catch (err) {
      throw keyError(keyPath, `${path} is not a usable private JWK (${safeReason(err)})`, err);
    }
    if (typeof jwk.kid === 'string') kid = jwk.kid;
    if (typeof jwk.alg === 'string') jwkAlg = jwk.alg;
  } else {
    if (!text.includes('-----BEGIN')) {
      throw keyError(keyPath, `${path} is neither a PEM private key nor a JWK JSON file`);
    }
    const encrypted = /ENCRYPTED/.test(text);
    if (encrypted && passphrase === undefined) {
      throw keyError(keyPath, `${path} is encrypted; set auth.private_key_pass`);
    }
    try {
      key = createPrivateKey({
        key: text,
        format: 'pem',
        ...(passphrase === undefined ? {} : { passphrase }),
      });
    } catch (err) {
      const reason = encrypted ? 'wrong auth.private_key_pass, or a damaged key' : safeReason(err);
      throw keyError(keyPath, `cannot load the private key in ${path}: ${reason}`, err);
    }
  }
  let alg: string | undefined;
  if (key.asymmetricKeyType === 'rsa') {
    alg = jwkAlg && /^(RS|PS)(256|384|512)$/.test(jwkAlg) ? jwkAlg : 'RS256';
  } else if (key.asymmetricKeyType === 'ec') {
    alg = CURVE_ALG[key.asymmetricKeyDetails?.namedCurve ?? ''];
  }
  if (alg === undefined) {
    throw keyError(
      keyPath,
      `${path} holds a ${key.asymmetricKeyType ?? 'unknown'} key; Okta accepts RSA or EC (P-256, P-384, P-521) keys`,
    );
  }
  return { key, alg, ...(kid === undefined ? {} : { kid }) };
}

/** Node's messages about keys name the format problem, never the key; keep only the first line. */
function safeReason(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? (err.message.split('\n')[0] ?? '') : '';
  return typeof code === 'string' ? `${code}: ${message}` : message;
}

function keyError(keyPath: string, message: string, cause?: unknown): OktailError {
  return new OktailError('CONFIG_INVALID', `${keyPath}: ${message}`, false, { cause });
}
