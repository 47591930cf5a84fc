import * as z from 'zod';

/*
 * Building blocks shared by the config schema and the components' own schemas (each source and sink
 * folder defines its schema with these). Kept apart from schema.ts so a component can import them
 * without importing the registry that imports the component.
 *
 * Messages start with a lower-case letter ("must be ..."); the loader relies on that to tell them apart
 * from zod's generic wording.
 */

export function intBetween(min: number, max: number) {
  const message = `must be between ${min} and ${max}`;
  return z.int().min(min, message).max(max, message);
}

export function numberBetween(min: number, max: number) {
  const message = `must be between ${min} and ${max}`;
  return z.number().min(min, message).max(max, message);
}

/** A file path, resolved against the config file's directory by the loader. */
export const FilePath = z.string().min(1, 'must not be empty').meta({ path: true });

/** A secret string: redacted in `validate --print`, config errors and logs. */
export function secretString() {
  return z.string().meta({ secret: true });
}

export const Inputs = z
  .array(z.string().min(1, 'must not be empty'))
  // At least one source, unless the config has a console block (checked in the config schema): a fresh
  // install starts with sinks only and gets its first source from the console.
  .describe('Names of the sources whose events this sink receives.');

// An HTTP header name is an RFC 9110 token; anything else would be rejected by the HTTP client later.
export const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
