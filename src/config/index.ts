export { ConfigError, formatPath, formatProblem, type ConfigProblem } from './errors.js';
export { interpolate, type Interpolated } from './interpolate.js';
export { loadConfig, parseConfig, type ParseOptions } from './load.js';
export { REDACTED, redactConfig } from './redact.js';
export * from './schema.js';
