import { forEachMarked } from './messages.js';
import type { PathSegment } from './errors.js';
import { ConfigSchema, type Config } from './schema.js';

export const REDACTED = '[redacted]';

/**
 * A deep copy of the config that is safe to print (`oktail validate`): every field the schema marks
 * `.meta({ secret: true })`, in sources and sinks alike, is replaced.
 */
export function redactConfig(config: Config): Config {
  const copy = structuredClone(config);
  forEachMarked(ConfigSchema, copy, 'secret', (path) => {
    let parent: unknown = copy;
    for (const segment of path.slice(0, -1)) parent = (parent as Record<PathSegment, unknown>)[segment];
    (parent as Record<PathSegment, unknown>)[path[path.length - 1] as PathSegment] = REDACTED;
  });
  return copy;
}
