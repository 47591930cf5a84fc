import type { AuthConfig } from './schema.js';
import type { OktaClientSettings } from '../client.js';
import { readSecretFile } from '../../../config/secret-file.js';
import { loadSigningKey } from './key.js';
import { OAuthAuth } from './oauth.js';

export type { AuthProvider, AuthDescription } from './provider.js';
export { OAuthAuth, OAuthTokenError } from './oauth.js';

/** The client's auth setting for a source; reads and checks the OAuth key file (naming its config key). */
export async function authSettings(name: string, auth: AuthConfig): Promise<OktaClientSettings['auth']> {
  if (auth.strategy === 'bearer') {
    const token =
      auth.token_file === undefined
        ? auth.token
        : await readSecretFile(auth.token_file, `sources.${name}.auth.token_file`);
    return { header: auth.header, prefix: auth.prefix, token };
  }
  const pass =
    auth.private_key_pass_file === undefined
      ? auth.private_key_pass
      : await readSecretFile(auth.private_key_pass_file, `sources.${name}.auth.private_key_pass_file`);
  const key = await loadSigningKey(auth.private_key_file, pass, `sources.${name}.auth.private_key_file`);
  return (transport) =>
    new OAuthAuth(
      {
        clientId: auth.client_id,
        key,
        ...(auth.key_id === undefined ? {} : { keyId: auth.key_id }),
        scopes: auth.scopes,
        dpop: auth.dpop,
      },
      transport,
    );
}
