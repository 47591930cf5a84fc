import { isIP } from 'node:net';
import * as z from 'zod';
import { FilePath } from './fields.js';

/*
 * Outbound proxy for the connections to Okta (the API and the OAuth token endpoint alike). Given
 * globally or per source; a source's own block replaces the global one. Absent everywhere: the standard
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY environment variables apply; `url: ""` turns them off.
 */

/** Checks a proxy URL without ever repeating it: it may carry a password. */
export function checkProxyUrl(value: string): string | null {
  if (value === '') return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be a URL such as http://proxy.example:3128 (or "" for no proxy)';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return 'must start with http:// or https:// (the proxy itself is reached over HTTP or HTTPS)';
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    return 'must be scheme://[user:password@]host[:port] with no path';
  }
  if (url.password !== '' && url.username === '') return 'has a password but no user name';
  return null;
}

/** A `no_proxy` entry: a host, `.suffix` / `*.suffix`, `host:port`, an IP address, a CIDR block or `*`. */
export function checkNoProxyEntry(entry: string): string | null {
  if (entry === '*') return null;
  const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
  if (cidr) {
    const family = isIP(cidr[1] ?? '');
    const bits = Number(cidr[2]);
    if (family === 0 || bits > (family === 4 ? 32 : 128)) return 'must be a CIDR block such as 10.0.0.0/8';
    return null;
  }
  const host = entry.replace(/^\*?\./, '').replace(/:\d{1,5}$/, '');
  if (isIP(host.replace(/^\[|\]$/g, '')) !== 0) return null;
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(host)) {
    return 'must be a host name, .domain suffix, IP address, CIDR block or *';
  }
  return null;
}

export const ProxySchema = z
  .strictObject({
    url: z
      .string()
      // A secret that may hold a password; `validate --print` shows it with only the password replaced.
      .meta({ secret: true, url_password: true })
      .superRefine((value, ctx) => {
        const problem = checkProxyUrl(value);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .describe(
        'http:// or https:// proxy URL, e.g. http://user:${PROXY_PASS}@proxy.corp.example:3128; "" = no proxy, ignoring the environment. A secret (it may hold a password).',
      ),
    no_proxy: z
      .array(
        z.string().superRefine((value, ctx) => {
          const problem = checkNoProxyEntry(value);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
      )
      .default([])
      .describe(
        'Hosts reached directly: names, .domain suffixes, IP addresses, CIDR blocks (10.0.0.0/8), or *.',
      ),
    tls: z
      .strictObject({
        ca_file: FilePath.optional().describe(
          "PEM CA bundle that signed an https:// proxy's own certificate. Relative to the config file.",
        ),
      })
      .prefault({})
      .describe("TLS to an https:// proxy itself (Okta's TLS settings apply inside the tunnel)."),
  })
  .describe('Outbound proxy to Okta. Absent: HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment.');

export type ProxyConfig = z.output<typeof ProxySchema>;
