import { isOktailError } from '../core/errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_AUTH = 3;
export const EXIT_BAD_REQUEST = 4;

/** The documented exit code for an error; only src/cli exits. */
export function exitCodeFor(err: unknown): number {
  if (!isOktailError(err)) return EXIT_FAILURE;
  switch (err.code) {
    case 'CONFIG_INVALID':
      return EXIT_USAGE;
    case 'OKTA_AUTH':
    case 'PROXY_AUTH':
      return EXIT_AUTH;
    case 'OKTA_BAD_REQUEST':
      return EXIT_BAD_REQUEST;
    default:
      return EXIT_FAILURE;
  }
}
