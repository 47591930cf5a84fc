import type { SourceRegistration } from '../../core/registry.js';
import { OktaSourceSchema, type OktaSourceConfig } from './config.js';

export const oktaSource: SourceRegistration<OktaSourceConfig> = {
  type: 'okta',
  schema: OktaSourceSchema,
  // The config loader imports the registry, so the client, the script host and the rate limiter load only
  // when a pipeline is built: `validate` and the state commands never pay for the HTTP stack.
  create: async (name, config, context) =>
    (await import('./factory.js')).createOktaSource(name, config, context),
};
