import type { Config } from './schema.js';

export const REDACTED = '[redacted]';

/** A deep copy of the config that is safe to print (`oktail validate`): secrets are replaced. */
export function redactConfig(config: Config): Config {
  const copy = structuredClone(config);
  for (const source of Object.values(copy.sources)) {
    source.auth.token = REDACTED;
    if (source.tls.key_pass !== undefined) source.tls.key_pass = REDACTED;
  }
  return copy;
}
