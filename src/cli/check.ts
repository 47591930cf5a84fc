import { lookup } from 'node:dns/promises';
import { Command } from '@commander-js/extra-typings';
import type { ProxyConfig } from '../config/proxy.js';
import type { OktaSourceConfig } from '../config/schema.js';
import { errorMessage, isOktailError } from '../core/errors.js';
import type { AuthDescription } from '../sources/okta/auth/index.js';
import { readRateLimit } from '../sources/okta/rate-limit-headers.js';
import { EXIT_OK, exitCodeFor } from './exit-codes.js';

export interface CheckResult {
  ok: boolean;
  lines: string[];
  error?: unknown;
}

const TLS_HINT =
  'check tls.ca_file (the CA that signed the server certificate), or verify_hostname for a certificate issued to another name';

/** Names the failing layer from a transport error's code. */
function diagnoseTransport(err: unknown, host: string): string {
  const cause = (err as { cause?: unknown }).cause ?? err;
  const rawCode = (cause as { code?: unknown }).code;
  const code = typeof rawCode === 'string' ? rawCode : '';
  const msg = errorMessage(cause);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `DNS: cannot resolve ${host} (${code})`;
  if (
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'UND_ERR_CONNECT_TIMEOUT',
    ].includes(code)
  ) {
    return `TCP: cannot connect to ${host} (${code}: ${msg})`;
  }
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO|HOSTNAME|ALTNAME/i.test(code) || /certificate|tls|ssl/i.test(msg)) {
    return `TLS: handshake with ${host} failed (${code || 'error'}: ${msg}); ${TLS_HINT}`;
  }
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') {
    // Under TLS 1.3 a server that demands a client certificate only hangs up after the handshake.
    return (
      `TLS or HTTP: ${host} closed the connection (${code}: ${msg}); if the org requires a client ` +
      'certificate (mTLS), set tls.crt_file and tls.key_file'
    );
  }
  return `HTTP: request to ${host} failed (${code || 'error'}: ${msg})`;
}

function authLine(auth: AuthDescription): string {
  if (auth.strategy === 'bearer') return 'Auth: bearer (API token)';
  const scopes = auth.scopes && auth.scopes.length > 0 ? auth.scopes.join(' ') : 'none listed';
  return `Auth: oauth2 (client credentials, private_key_jwt); granted scopes: ${scopes}; DPoP: ${auth.dpop ? 'negotiated' : 'not used'}`;
}

function hintFor(status: number | null, strategy: 'bearer' | 'oauth2'): string {
  switch (status) {
    case 401:
      return strategy === 'oauth2'
        ? "Okta refused the app's access token: check the app is active and auth.dpop matches its DPoP setting"
        : 'the token is invalid, expired or revoked: create a new API token and set OKTA_API_TOKEN';
    case 403:
      return strategy === 'oauth2'
        ? 'the app lacks permission: grant it the okta.logs.read scope and assign it an admin role (e.g. Read-only Administrator)'
        : 'the token lacks permission: its admin needs Read-only Administrator or okta.logs.read';
    case 400:
      return 'Okta rejected the request parameters';
    case 429:
      return 'the rate limit is exhausted right now; other integrations are using the budget';
    default:
      return 'Okta or the network failed; try again later';
  }
}

/** One authenticated `limit=1` request, reported layer by layer. */
export async function checkSource(
  name: string,
  cfg: OktaSourceConfig,
  globalProxy?: ProxyConfig,
): Promise<CheckResult> {
  const lines: string[] = [];
  const host = cfg.domain.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  // Loaded per check, not at start-up: the HTTP stack is most of what every other command would load.
  const { createClient } = await import('../pipeline/build.js');
  const { OktaResponseError } = await import('../sources/okta/client.js');
  const { OAuthTokenError } = await import('../sources/okta/auth/index.js');
  let client;
  try {
    client = await createClient(name, cfg, globalProxy);
  } catch (err) {
    lines.push(errorMessage(err));
    return { ok: false, lines, error: err };
  }
  if (client.proxy) {
    // Behind a proxy the org's name may not resolve locally at all; the proxy resolves it.
    lines.push(`Proxy: ${client.proxy.label} (CONNECT tunnel; TLS to the org inside it)`);
  } else {
    try {
      const { address } = await lookup(host);
      lines.push(`DNS: ${host} resolves to ${address}`);
    } catch (err) {
      lines.push(diagnoseTransport(err, host));
      await client.close();
      return { ok: false, lines, error: err };
    }
  }
  try {
    const url = client.resolve('/api/v1/logs?limit=1');
    const page = await client.fetch(url, AbortSignal.timeout(cfg.request_timeout_secs * 1000));
    lines.push(`TCP and TLS: connected to ${client.origin}`);
    lines.push(authLine(client.auth.describe()));
    lines.push(`HTTP: ${page.status}, System Log readable`);
    lines.push(rateLimitLine(page.headers, page.receivedAtMs));
    return { ok: true, lines };
  } catch (err) {
    if (
      isOktailError(err, 'PROXY_AUTH') ||
      (client.proxy && isOktailError(err) && /\bproxy http/.test(err.message))
    ) {
      lines.push(`Proxy: ${err.message}`);
    } else if (err instanceof OktaResponseError && err.status !== null) {
      lines.push(`TCP and TLS: connected to ${client.origin}`);
      lines.push(`HTTP: ${err.status}: ${err.message}`);
      // The token endpoint's messages already say what to fix in the Admin Console.
      if (!(err instanceof OAuthTokenError)) {
        lines.push(`Hint: ${hintFor(err.status, client.auth.strategy)}`);
      }
      lines.push(rateLimitLine(err.headers, Date.now()));
    } else {
      lines.push(diagnoseTransport(isOktailError(err) && err.cause ? err.cause : err, cfg.domain));
    }
    return { ok: false, lines, error: err };
  } finally {
    await client.close();
  }
}

function rateLimitLine(headers: Record<string, string>, receivedAtMs: number): string {
  const info = readRateLimit(headers, receivedAtMs);
  if (!info) return 'Rate limit: no X-Rate-Limit headers in the response';
  return `Rate limit: ${info.remaining} of ${info.limit} requests left in this window, resets in ${Math.ceil(info.resetInMs / 1000)} s`;
}

export function checkCommand() {
  return new Command('check')
    .description('test the connection to each source: one authenticated request, diagnosed layer by layer')
    .requiredOption('-c, --config <file>', 'config file (YAML)')
    .action(async (opts) => {
      const { loadConfig } = await import('../config/load.js');
      const config = await loadConfig(opts.config);
      let exitCode = EXIT_OK;
      for (const [name, cfg] of Object.entries(config.sources)) {
        const result = await checkSource(name, cfg, config.proxy);
        process.stdout.write(`${name} (${cfg.domain}): ${result.ok ? 'OK' : 'FAILED'}\n`);
        for (const line of result.lines) process.stdout.write(`  ${line}\n`);
        if (!result.ok && exitCode === EXIT_OK) exitCode = exitCodeFor(result.error);
      }
      process.exitCode = exitCode;
    });
}
