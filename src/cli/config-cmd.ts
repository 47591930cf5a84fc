import { Command } from '@commander-js/extra-typings';

export function configCommand() {
  const config = new Command('config').description('help writing a config file');
  config
    .command('schema')
    .description('print the JSON Schema of the config file, for editors and CI checks')
    .action(async () => {
      const { configJsonSchema } = await import('../config/schema.js');
      process.stdout.write(JSON.stringify(configJsonSchema(), null, 2) + '\n');
    });
  config
    .command('example')
    .description('print a commented example config with every key')
    .option('--cluster', 'an example for several replicas sharing their state in PostgreSQL')
    .action(async (opts) => {
      // Loaded here: the example lists every sink's keys, which loads the sinks' schemas (and zod), and
      // `oktail --help` builds this command too.
      const { CLUSTER_EXAMPLE, CONFIG_EXAMPLE } = await import('./config-example.js');
      process.stdout.write(opts.cluster === true ? CLUSTER_EXAMPLE : CONFIG_EXAMPLE);
    });
  return config;
}
