import { readFile } from 'node:fs/promises';
import { OktailError } from '../core/errors.js';

/**
 * Reads a secret kept in a file (`auth.token_file`, `auth.private_key_pass_file`, `tls.key_pass_file`).
 * One trailing line break is dropped because editors add one. The message names the key and the path,
 * never the content.
 */
export async function readSecretFile(path: string, keyPath: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new OktailError(
      'CONFIG_INVALID',
      `${keyPath}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      false,
      { cause: err },
    );
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new OktailError('CONFIG_INVALID', `${keyPath}: ${path} is empty`);
  return value;
}
