import * as z from 'zod';
import { FilePath, HTTP_TOKEN, secretString } from '../../../config/fields.js';

/*
 * How a source authenticates: an API token (bearer, Okta's "SSWS") or an OAuth 2.0 service app
 * (client credentials with a private_key_jwt assertion, optionally DPoP). One strict mapping with every
 * key, checked per strategy, rather than a union: a union would turn a typo into "does not match any
 * allowed form" instead of naming the key.
 */

export const AUTH_STRATEGIES = ['bearer', 'oauth2'] as const;
export const DEFAULT_SCOPES = ['okta.logs.read'];

const TokenSchema = secretString()
  .min(1, 'must not be empty')
  .superRefine((value, ctx) => {
    // Never include the value: this is the token.
    if (/^(ssws|bearer)\s/i.test(value)) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be the token alone; auth.prefix adds the "SSWS " in front of it',
      });
    } else if (/[\s\p{Cc}]/u.test(value)) {
      ctx.addIssue({ code: 'custom', message: 'must not contain spaces, line breaks or control characters' });
    }
  })
  .describe(
    'The API token (strategy bearer). A secret: write ${OKTA_API_TOKEN} rather than the token itself.',
  );

export const BEARER_KEYS = ['token', 'token_file', 'header', 'prefix'] as const;
export const OAUTH_KEYS = [
  'client_id',
  'private_key_file',
  'private_key_pass',
  'private_key_pass_file',
  'key_id',
  'scopes',
  'dpop',
] as const;

export const AuthSchema = z
  .strictObject({
    strategy: z
      .enum(AUTH_STRATEGIES)
      .default('bearer')
      .describe(
        'bearer: an API token. oauth2: an OAuth 2.0 service app (client credentials, private_key_jwt).',
      ),
    token: TokenSchema.optional(),
    token_file: FilePath.optional().describe(
      'bearer: a file holding the API token instead of auth.token (the web console writes one, mode 0600, in data_dir). Relative to the config file.',
    ),
    header: z
      .string()
      .regex(HTTP_TOKEN, 'must be an HTTP header name')
      .optional()
      .meta({ default: 'Authorization' })
      .describe('bearer: the request header that carries the token (default Authorization).'),
    prefix: z
      .string()
      .regex(/^[^\r\n]*$/, 'must not contain line breaks')
      .optional()
      .meta({ default: 'SSWS ' })
      .describe('bearer: text put before the token; note the trailing space of the default "SSWS ".'),
    client_id: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,100}$/, 'must be the client ID of the Okta app, e.g. 0oa1b2c3d4e5f6g7h8i9')
      .optional()
      .describe("oauth2: the service app's client ID (Admin Console > Applications > the app > General)."),
    private_key_file: FilePath.optional().describe(
      'oauth2: the private key whose public key is registered with the app: PEM (RSA or EC, PKCS#8 or PKCS#1/SEC1, optionally encrypted) or a JWK JSON file. Relative to the config file.',
    ),
    private_key_pass: secretString()
      .optional()
      .describe('oauth2: passphrase of an encrypted PEM private_key_file. A secret: write ${OKTA_KEY_PASS}.'),
    private_key_pass_file: FilePath.optional().describe(
      'oauth2: a file holding the passphrase instead of auth.private_key_pass (the web console writes one, mode 0600, in data_dir). Relative to the config file.',
    ),
    key_id: z
      .string()
      .regex(/^[\x21-\x7e]{1,200}$/, 'must be printable characters without spaces')
      .optional()
      .describe("oauth2: the key's kid as registered with the app, sent in the assertion's header."),
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be a scope name, e.g. okta.logs.read'))
      .min(1, 'must list at least one scope')
      .optional()
      .meta({ default: DEFAULT_SCOPES })
      .describe('oauth2: scopes to request (default [okta.logs.read]); they must be granted to the app.'),
    dpop: z
      .union([z.literal('auto'), z.boolean()])
      .optional()
      .meta({ default: 'auto' })
      .describe(
        'oauth2: Demonstrating Proof of Possession. auto (default): use it when the org asks for it; true: always; false: never.',
      ),
  })
  // Defaults are filled in after this check so it can tell what was written for which strategy.
  .superRefine((auth, ctx) => {
    const strategy = auth.strategy;
    const foreign = strategy === 'oauth2' ? BEARER_KEYS : OAUTH_KEYS;
    for (const key of foreign) {
      if (auth[key] !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `is used only with auth.strategy ${strategy === 'oauth2' ? 'bearer' : 'oauth2'}`,
        });
      }
    }
    if (strategy === 'bearer' && auth.token !== undefined && auth.token_file !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['token_file'],
        message: 'cannot be set together with auth.token',
      });
    }
    if (
      strategy === 'oauth2' &&
      auth.private_key_pass !== undefined &&
      auth.private_key_pass_file !== undefined
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['private_key_pass_file'],
        message: 'cannot be set together with auth.private_key_pass',
      });
    }
    const required =
      strategy === 'oauth2'
        ? (['client_id', 'private_key_file'] as const)
        : auth.token_file === undefined
          ? (['token'] as const)
          : [];
    for (const key of required) {
      if (auth[key] === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: strategy === 'oauth2' ? 'is required with auth.strategy oauth2' : 'is required',
          params: { missing: true },
        });
      }
    }
  })
  .transform((auth): AuthConfig => {
    if (auth.strategy === 'oauth2') {
      return {
        strategy: 'oauth2',
        client_id: auth.client_id ?? '',
        private_key_file: auth.private_key_file ?? '',
        ...(auth.private_key_pass === undefined ? {} : { private_key_pass: auth.private_key_pass }),
        ...(auth.private_key_pass_file === undefined
          ? {}
          : { private_key_pass_file: auth.private_key_pass_file }),
        ...(auth.key_id === undefined ? {} : { key_id: auth.key_id }),
        scopes: auth.scopes ?? [...DEFAULT_SCOPES],
        dpop: auth.dpop ?? 'auto',
      };
    }
    return {
      strategy: 'bearer',
      token: auth.token ?? '',
      ...(auth.token_file === undefined ? {} : { token_file: auth.token_file }),
      header: auth.header ?? 'Authorization',
      prefix: auth.prefix ?? 'SSWS ',
    };
  })
  .describe('How requests to the org are authenticated.');

export interface BearerAuthConfig {
  strategy: 'bearer';
  /** Empty when the token is read from token_file at start. */
  token: string;
  token_file?: string;
  header: string;
  prefix: string;
}

export interface OAuth2AuthConfig {
  strategy: 'oauth2';
  client_id: string;
  private_key_file: string;
  private_key_pass?: string;
  /** Read at start instead of private_key_pass. */
  private_key_pass_file?: string;
  key_id?: string;
  scopes: string[];
  dpop: 'auto' | boolean;
}

export type AuthConfig = BearerAuthConfig | OAuth2AuthConfig;
