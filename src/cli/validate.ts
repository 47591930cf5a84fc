import { Command } from '@commander-js/extra-typings';
import { loadConfig } from '../config/load.js';
import { redactConfig } from '../config/redact.js';
import { OktailError } from '../core/errors.js';
import { tlsSettings } from '../pipeline/build.js';
import { checkCollectionScript } from '../script/index.js';
import { authSettings } from '../sources/okta/auth/index.js';
import { sourceProxy } from '../sources/okta/proxy.js';
import { SINKS } from '../sinks/index.js';
import { tlsConnectOptions, type SinkTlsConfig } from '../sinks/shared/config.js';
import { EXIT_OK, EXIT_USAGE } from './exit-codes.js';

export function validateCommand() {
  return new Command('validate')
    .description('check the config (and the collection scripts and TLS files it names) without collecting')
    .requiredOption('-c, --config <file>', 'config file (YAML)')
    .option('--print', 'print the effective config (secrets redacted)')
    .action(async (opts) => {
      const config = await loadConfig(opts.config);
      const problems: string[] = [];
      for (const [name, source] of Object.entries(config.sources)) {
        if (source.script) {
          for (const p of await checkCollectionScript(source.script)) {
            const line = p.line === null ? '' : ` line ${p.line}`;
            problems.push(`sources.${name}.script: ${source.script}${line}: ${p.message}`);
          }
        }
        // The files a source needs at run time, each failure naming its key: TLS files, the OAuth
        // key (decrypted with its passphrase), a proxy's CA.
        for (const load of [
          () => tlsSettings(name, source),
          () => authSettings(name, source.auth),
          () => sourceProxy(name, source.domain, source.proxy, config.proxy),
        ]) {
          try {
            await load();
          } catch (err) {
            if (err instanceof OktailError) problems.push(err.message);
            else throw err;
          }
        }
      }
      for (const [name, sink] of Object.entries(config.sinks)) {
        const tls = (sink as { tls?: SinkTlsConfig }).tls;
        if (!tls) continue;
        try {
          await tlsConnectOptions(tls, `sinks.${name}.tls`);
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
      const sinks = Object.entries(config.sinks).map(([name, sink]) => {
        const guarantee = SINKS.find((r) => r.type === sink.type)?.guarantee;
        return guarantee ? `${name}: ${sink.type}, ${guarantee.replace('-', ' ')}` : name;
      });
      process.stdout.write(
        `${opts.config} is valid: ${sources.length} source(s) (${sources.join(', ')}), ` +
          `${sinks.length} sink(s) (${sinks.join('; ')}).\n`,
      );
      if (opts.print) process.stdout.write(JSON.stringify(redactConfig(config), null, 2) + '\n');
      process.exitCode = EXIT_OK;
    });
}
