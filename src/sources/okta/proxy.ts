import { readFile } from 'node:fs/promises';
import { BlockList, isIP } from 'node:net';
import { Agent, ProxyAgent, type Dispatcher } from 'undici';
import { OktailError, errorMessage } from '../../core/errors.js';
import type { ProxyConfig } from '../../config/proxy.js';
import type { OktaTlsSettings } from './client.js';

/** The proxy a source's connection goes through. */
export interface ProxySettings {
  /** With credentials, if any: only ever handed to undici, never shown. */
  url: string;
  /** `scheme://host:port`, safe to show. */
  label: string;
  /** Whether the URL carries credentials (a 407 then means they are wrong). */
  credentials: boolean;
  /** CA of an https:// proxy's own certificate. */
  ca?: Buffer;
}

/** What a source configured: `undefined` = the environment decides; `url: ""` = no proxy. */
export interface ProxyChoice {
  url: string;
  noProxy: readonly string[];
  ca?: Buffer;
}

/**
 * Decides once, for the one origin a source talks to, whether to use a proxy. The environment variables
 * are read the way curl and undici's EnvHttpProxyAgent read them (lower case first); unlike that agent,
 * no_proxy entries may also be CIDR blocks.
 */
export function resolveProxy(
  domain: string,
  choice: ProxyChoice | undefined,
  env: NodeJS.ProcessEnv = process.env,
): ProxySettings | null {
  const url = choice
    ? choice.url
    : // An empty variable counts as unset, as in curl.
      env.https_proxy || env.HTTPS_PROXY || env.http_proxy || env.HTTP_PROXY || '';
  if (url === '') return null;
  const noProxy = choice ? choice.noProxy : splitNoProxy(env.no_proxy || env.NO_PROXY || '');
  if (bypasses(domain, noProxy)) return null;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    // Only the environment can get here (the config is validated); the value may hold a password.
    throw new OktailError('CONFIG_INVALID', 'HTTPS_PROXY/HTTP_PROXY is not a valid URL', false, {
      cause: err,
    });
  }
  return {
    url,
    label: `${parsed.protocol}//${parsed.host}`,
    credentials: parsed.username !== '',
    ...(choice?.ca === undefined ? {} : { ca: choice.ca }),
  };
}

function splitNoProxy(text: string): string[] {
  return text.split(/[,\s]+/).filter((entry) => entry !== '');
}

/** Whether `host[:port]` is listed in no_proxy. */
export function bypasses(domain: string, entries: readonly string[]): boolean {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(domain) ?? /^([^:]+)(?::(\d+))?$/.exec(domain);
  const host = (m?.[1] ?? domain).toLowerCase();
  const port = m?.[2] === undefined ? 443 : Number(m[2]);
  const family = isIP(host);
  for (const raw of entries) {
    const entry = raw.toLowerCase();
    if (entry === '*') return true;
    const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
    if (cidr) {
      const base = cidr[1] ?? '';
      const baseFamily = isIP(base);
      if (family === 0 || baseFamily !== family) continue;
      const list = new BlockList();
      const type = family === 4 ? 'ipv4' : 'ipv6';
      list.addSubnet(base, Number(cidr[2]), type);
      if (list.check(host, type)) return true;
      continue;
    }
    const withPort = /^(.+):(\d{1,5})$/.exec(entry);
    const name = (withPort && !entry.includes('::') ? (withPort[1] ?? '') : entry)
      .replace(/^\*?\./, '')
      .replace(/^\[|\]$/g, '');
    if (withPort && !entry.includes('::') && Number(withPort[2]) !== port) continue;
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}

export interface DispatcherOptions {
  tls?: OktaTlsSettings;
  proxy: ProxySettings | null;
  timeoutMs: number;
}

/** One connection to the org, directly or through a CONNECT tunnel; the org's TLS settings apply either way. */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const tls = options.tls;
  const connect = tls
    ? {
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        passphrase: tls.passphrase,
        rejectUnauthorized: tls.verifyCertificate,
        ...(tls.verifyHostname ? {} : { checkServerIdentity: () => undefined }),
      }
    : {};
  const common = {
    // One connection: Okta also limits concurrent requests per org, and we keep one in flight.
    connections: 1,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  };
  const proxy = options.proxy;
  if (proxy === null) return new Agent({ ...common, connect });
  return new ProxyAgent({
    ...common,
    uri: proxy.url,
    requestTls: connect,
    ...(proxy.ca === undefined ? {} : { proxyTls: { ca: proxy.ca } }),
  });
}

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Names the proxy in a failure that happened at the proxy (its URL without credentials). Returns null for
 * failures inside the tunnel, which the caller reports as usual.
 */
export function describeProxyFailure(
  err: unknown,
  proxy: ProxySettings,
): { message: string; retryable: boolean } | null {
  const message = errorMessage(err);
  const status = /Proxy response \((\d{3})\)/.exec(message)?.[1];
  if (status !== undefined) {
    // tinyproxy answers wrong credentials with 401 rather than 407.
    if (status === '407' || (status === '401' && proxy.credentials)) {
      return proxy.credentials
        ? {
            message: `proxy authentication failed at ${proxy.label} (${status}): check the user and password in proxy.url`,
            retryable: false,
          }
        : {
            message: `proxy ${proxy.label} requires authentication (407): put user:password in proxy.url`,
            retryable: true,
          };
    }
    return {
      message: `proxy ${proxy.label} refused the tunnel (CONNECT answered ${status})`,
      retryable: true,
    };
  }
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && UNREACHABLE.has(code)) {
    return { message: `proxy ${proxy.label} is unreachable (${code})`, retryable: true };
  }
  if (code === 'UND_ERR_PRX_TLS') {
    return {
      message: `TLS to proxy ${proxy.label} failed (${message}); check proxy.tls.ca_file`,
      retryable: true,
    };
  }
  return null;
}

/**
 * The proxy settings of a source: its own `proxy` block, else the global one, else the environment.
 * Reads an https:// proxy's CA file, naming the config key when it cannot.
 */
export async function sourceProxy(
  name: string,
  domain: string,
  own: ProxyConfig | undefined,
  global: ProxyConfig | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ProxySettings | null> {
  const cfg = own ?? global;
  if (cfg === undefined) return resolveProxy(domain, undefined, env);
  let ca: Buffer | undefined;
  if (cfg.tls.ca_file !== undefined) {
    const keyPath = own === undefined ? 'proxy.tls.ca_file' : `sources.${name}.proxy.tls.ca_file`;
    try {
      ca = await readFile(cfg.tls.ca_file);
    } catch (err) {
      throw new OktailError(
        'CONFIG_INVALID',
        `${keyPath}: cannot read ${cfg.tls.ca_file} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`,
        false,
        { cause: err },
      );
    }
  }
  return resolveProxy(
    domain,
    { url: cfg.url, noProxy: cfg.no_proxy, ...(ca === undefined ? {} : { ca }) },
    env,
  );
}
