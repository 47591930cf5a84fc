import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { OktailError } from '../core/errors.js';
import { syncDir } from '../core/fs-sync.js';

/*
 * The console's access token. Only its SHA-256 is stored (data_dir/console-token.json, mode 0600), so the
 * token itself exists only in the sign-in URL logged when it was made. Sessions are HMACs under a key kept
 * beside the hash: they survive a restart, and rotating the token ends every session at once.
 */

export const TOKEN_FILE = 'console-token.json';
/** How long a session lasts after sign-in. */
export const SESSION_MS = 12 * 3600_000;

interface TokenRecord {
  version: 1;
  sha256: string;
  session_key: string;
  created_at: string;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

async function writeRecord(dataDir: string, record: TokenRecord): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, TOKEN_FILE);
  const tmp = `${path}.tmp`;
  const file = await open(tmp, 'w', 0o600);
  try {
    await file.chmod(0o600);
    await file.writeFile(JSON.stringify(record, null, 2) + '\n');
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
  // A rotation must survive a crash: until the directory is on disk the old hash, and so the old token
  // and its sessions, may come back.
  await syncDir(dataDir);
}

async function readRecord(dataDir: string): Promise<TokenRecord | null> {
  let text: string;
  try {
    text = await readFile(join(dataDir, TOKEN_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new OktailError('STATE_CORRUPT', `Cannot read ${join(dataDir, TOKEN_FILE)}`, false, { cause: err });
  }
  let parsed: Partial<TokenRecord> | null;
  try {
    parsed = JSON.parse(text) as Partial<TokenRecord> | null;
  } catch {
    parsed = null;
  }
  if (
    !parsed ||
    parsed.version !== 1 ||
    typeof parsed.sha256 !== 'string' ||
    typeof parsed.session_key !== 'string'
  ) {
    throw new OktailError(
      'STATE_CORRUPT',
      `${join(dataDir, TOKEN_FILE)} has an unknown format; run oktail console token --rotate`,
    );
  }
  return parsed as TokenRecord;
}

/** Makes a new token, replacing any old one (and ending its sessions). Returns the token itself. */
export async function rotateConsoleToken(dataDir: string): Promise<string> {
  const token = randomBytes(24).toString('base64url');
  await writeRecord(dataDir, {
    version: 1,
    sha256: sha256(token).toString('hex'),
    session_key: randomBytes(32).toString('base64url'),
    created_at: new Date().toISOString(),
  });
  return token;
}

/** The token made now when there was none (to be logged once), or null when one exists already. */
export async function ensureConsoleToken(dataDir: string): Promise<string | null> {
  if (await readRecord(dataDir)) return null;
  return rotateConsoleToken(dataDir);
}

/** Checks tokens and sessions against the stored record, re-read each time so a rotation applies at once. */
export class ConsoleAuth {
  readonly #dataDir: string;
  readonly #now: () => number;

  constructor(dataDir: string, now: () => number = Date.now) {
    this.#dataDir = dataDir;
    this.#now = now;
  }

  async verifyToken(token: string): Promise<boolean> {
    const record = await readRecord(this.#dataDir);
    if (!record) return false;
    const expected = Buffer.from(record.sha256, 'hex');
    const actual = sha256(token);
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }

  /** A new session value for the cookie: its expiry and an HMAC over it. */
  async newSession(): Promise<string> {
    const record = await readRecord(this.#dataDir);
    if (!record) throw new OktailError('INTERNAL', 'The console token is missing');
    const expires = String(this.#now() + SESSION_MS);
    return `${expires}.${mac(record.session_key, expires)}`;
  }

  async verifySession(value: string | undefined): Promise<boolean> {
    if (!value) return false;
    const [expires, given] = value.split('.');
    if (!expires || !given || !/^\d+$/.test(expires) || Number(expires) < this.#now()) return false;
    const record = await readRecord(this.#dataDir);
    if (!record) return false;
    const expected = Buffer.from(mac(record.session_key, expires));
    const actual = Buffer.from(given);
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }
}

function mac(key: string, text: string): string {
  return createHmac('sha256', key).update(`oktail-console-session:${text}`).digest('base64url');
}
