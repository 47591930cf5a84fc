import type { Config } from './schema.js';
import type { ProxyConfig } from './proxy.js';

export const REDACTED = '[redacted]';

/** A deep copy of the config that is safe to print (`oktail validate`): secrets are replaced. */
export function redactConfig(config: Config): Config {
  const copy = structuredClone(config);
  if (copy.proxy) copy.proxy = redactProxy(copy.proxy);
  for (const source of Object.values(copy.sources)) {
    if (source.auth.strategy === 'bearer') source.auth.token = REDACTED;
    else if (source.auth.private_key_pass !== undefined) source.auth.private_key_pass = REDACTED;
    if (source.tls.key_pass !== undefined) source.tls.key_pass = REDACTED;
    if (source.proxy) source.proxy = redactProxy(source.proxy);
  }
  return copy;
}

function redactProxy(proxy: ProxyConfig): ProxyConfig {
  return { ...proxy, url: redactProxyUrl(proxy.url) };
}

/** The proxy URL with its password (if any) replaced; what the collector may show of a proxy. */
export function redactProxyUrl(url: string): string {
  if (url === '') return url;
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return parsed.href.replace(/\/$/, '');
    // Built by hand: the URL class would percent-encode the brackets of the placeholder.
    return `${parsed.protocol}//${parsed.username}:${REDACTED}@${parsed.host}`;
  } catch {
    return REDACTED;
  }
}
