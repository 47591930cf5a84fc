import { readFileSync } from 'node:fs';

/** The package's version, read without loading the pipeline (which `--version` and `--help` never use). */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
