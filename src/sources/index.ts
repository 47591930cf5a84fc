import { oktaSource } from './okta/registration.js';

/*
 * Every source type, one line each. The config's `sources` union and the pipeline's factory are built
 * from this list.
 */
export const SOURCES = [oktaSource] as const;
