import type { PathSegment } from './errors.js';
import { fieldMarksAt, forEachMarked } from './messages.js';
import { REDACTED, redactProxyUrl } from './redact-url.js';
import { ConfigSchema, type Config } from './schema.js';

export { REDACTED, redactProxyUrl } from './redact-url.js';

/**
 * A deep copy of the config that is safe to print (`oktail validate`): every field the schema marks
 * `.meta({ secret: true })`, in sources and sinks alike, is replaced. A secret also marked
 * `url_password` (a proxy URL) keeps its scheme, user and host; only its password is replaced.
 */
export function redactConfig(config: Config): Config {
  const copy = structuredClone(config);
  forEachMarked(ConfigSchema, copy, 'secret', (path, value) => {
    let parent: unknown = copy;
    for (const segment of path.slice(0, -1)) parent = (parent as Record<PathSegment, unknown>)[segment];
    const redacted = fieldMarksAt(ConfigSchema, path, copy).url_password ? redactProxyUrl(value) : REDACTED;
    (parent as Record<PathSegment, unknown>)[path[path.length - 1] as PathSegment] = redacted;
  });
  return copy;
}
