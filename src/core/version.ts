import { readFileSync } from 'node:fs';

/** The package's version, for `--version` and the User-Agent; a leaf module so reading it loads nothing else. */
// Two levels up from dist/core/ and from dist/bundle/ alike.
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
