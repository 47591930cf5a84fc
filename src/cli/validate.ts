import { Command } from '@commander-js/extra-typings';
import { OktailError } from '../core/errors.js';
import { EXIT_OK, EXIT_USAGE } from './exit-codes.js';

export function validateCommand() {
  return new Command('validate')
    .description('check the config (and the collection scripts and TLS files it names) without collecting')
    .requiredOption('-c, --config <file>', 'config file (YAML)')
    .option('--print', 'print the effective config (secrets redacted)')
    .action(async (opts) => {
      // Loaded here, and the script checker and TLS reader only when the config names a script or TLS
      // files: the Lua VM and the HTTP stack would otherwise double the time validate takes.
      const { loadConfig } = await import('../config/load.js');
      const config = await loadConfig(opts.config);
      const problems: string[] = [];
      for (const [name, source] of Object.entries(config.sources)) {
        if (source.script) {
          const { checkCollectionScript } = await import('../script/index.js');
          for (const p of await checkCollectionScript(source.script)) {
            const line = p.line === null ? '' : ` line ${p.line}`;
            problems.push(`sources.${name}.script: ${source.script}${line}: ${p.message}`);
          }
        }
        if (!source.tls?.enabled) continue;
        try {
          const { tlsSettings } = await import('../pipeline/build.js');
          await tlsSettings(name, source);
        } catch (err) {
          if (err instanceof OktailError) problems.push(err.message);
          else throw err;
        }
      }
      if (problems.length > 0) {
        process.stderr.write(
          `${opts.config} has ${problems.length} problem(s):\n${problems.map((p) => `  ${p}\n`).join('')}`,
        );
        process.exitCode = EXIT_USAGE;
        return;
      }
      const sources = Object.keys(config.sources);
      const sinks = Object.keys(config.sinks);
      process.stdout.write(
        `${opts.config} is valid: ${sources.length} source(s) (${sources.join(', ')}), ` +
          `${sinks.length} sink(s) (${sinks.join(', ')}).\n`,
      );
      const { redactConfig } = await import('../config/redact.js');
      if (opts.print) process.stdout.write(JSON.stringify(redactConfig(config), null, 2) + '\n');
      process.exitCode = EXIT_OK;
    });
}
