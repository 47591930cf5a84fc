import { checkSource } from '../cli/check.js';
import type { ProxyConfig } from '../config/proxy.js';
import type { OktaSourceConfig } from '../config/schema.js';

/** One layer of the diagnosis, as the console shows it: a pass or fail mark and the check's words. */
export interface Layer {
  layer: string;
  ok: boolean;
  text: string;
}

export interface ConnectionResult {
  ok: boolean;
  layers: Layer[];
  /** What to do, when the check knows. */
  hint: string | null;
}

/**
 * Test Connection: the very diagnosis `oktail check` prints (one authenticated limit=1 request, DNS, TCP,
 * TLS, HTTP status, Okta's errorCode, rate-limit headroom), split into its layers. On a failure the last
 * layer reached is the one that failed; the layers before it passed.
 */
export async function testConnection(
  name: string,
  cfg: OktaSourceConfig,
  proxy: ProxyConfig | undefined,
): Promise<ConnectionResult> {
  const result = await checkSource(name, cfg, proxy);
  const layers: Layer[] = [];
  let hint: string | null = null;
  for (const line of result.lines) {
    const colon = line.indexOf(': ');
    const layer = colon > 0 && colon < 20 ? line.slice(0, colon) : 'Setup';
    const text = colon > 0 && colon < 20 ? line.slice(colon + 2) : line;
    if (layer === 'Hint') {
      hint = text;
      continue;
    }
    layers.push({ layer, ok: true, text });
  }
  if (!result.ok) {
    const failing = [...layers].reverse().find((l) => l.layer !== 'Rate limit') ?? layers[layers.length - 1];
    if (failing) failing.ok = false;
  }
  return { ok: result.ok, layers, hint };
}
