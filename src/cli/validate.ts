import { Command } from '@commander-js/extra-typings';
import type { Config } from '../config/schema.js';
import { OktailError, errorMessage } from '../core/errors.js';
import type { SinkTlsConfig } from '../sinks/shared/config.js';
import { EXIT_OK, EXIT_USAGE } from './exit-codes.js';

/** A day less than Okta's 90-day retention, so a start near the edge is still dry-run. */
const BUILT_IN_QUIET_MS = 89 * 24 * 60 * 60 * 1000;

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
        // The files a source needs at run time, each failure naming its key: TLS files, the OAuth
        // key (decrypted with its passphrase), a proxy's CA. Each loader is imported only when needed,
        // so a plain config validates without loading the HTTP stack or the JWT library.
        const loads: (() => Promise<unknown>)[] = [];
        if (source.tls?.enabled) {
          loads.push(async () => (await import('../pipeline/build.js')).tlsSettings(name, source));
        }
        if (source.auth.strategy !== 'bearer') {
          loads.push(async () =>
            (await import('../sources/okta/auth/index.js')).authSettings(name, source.auth),
          );
        }
        const proxyEnv = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some(
          (k) => process.env[k],
        );
        if (source.proxy !== undefined || config.proxy !== undefined || proxyEnv) {
          loads.push(async () =>
            (await import('../sources/okta/proxy.js')).sourceProxy(
              name,
              source.domain,
              source.proxy,
              config.proxy,
            ),
          );
        }
        for (const load of loads) {
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
          const { tlsConnectOptions } = await import('../sinks/shared/config.js');
          await tlsConnectOptions(tls, `sinks.${name}.tls`);
        } catch (err) {
          if (err instanceof OktailError) problems.push(err.message);
          else throw err;
        }
      }
      const warnings = problems.length === 0 ? await startWarnings(config, problems) : [];
      for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
      if (problems.length > 0) {
        process.stderr.write(
          `${opts.config} has ${problems.length} problem(s):\n${problems.map((p) => `  ${p}\n`).join('')}`,
        );
        process.exitCode = EXIT_USAGE;
        return;
      }
      const sources = Object.keys(config.sources);
      const { SINKS } = await import('../sinks/index.js');
      const sinks = Object.entries(config.sinks).map(([name, sink]) => {
        const guarantee = SINKS.find((r) => r.type === sink.type)?.guarantee;
        return guarantee ? `${name}: ${sink.type}, ${guarantee.replace('-', ' ')}` : name;
      });
      // Replicas share state in PostgreSQL: say so, since it changes what the sinks may be and who collects.
      const state =
        config.state?.backend === 'postgres'
          ? `, state in PostgreSQL shared by replicas (lease ${config.state.lease_secs} s)`
          : '';
      process.stdout.write(
        `${opts.config} is valid: ${sources.length} source(s) (${sources.join(', ')}), ` +
          `${sinks.length} sink(s) (${sinks.join('; ')})${state}.\n`,
      );
      const { redactConfig } = await import('../config/redact.js');
      if (opts.print) process.stdout.write(JSON.stringify(redactConfig(config), null, 2) + '\n');
      process.exitCode = EXIT_OK;
    });
}

/**
 * What the collection script says when it works out each source's first start (e.g. that `start_from`
 * lies beyond Okta's retention and what it starts from instead), as a first run would log it.
 */
async function startWarnings(config: Config, problems: string[]): Promise<string[]> {
  const warnings: string[] = [];
  for (const [name, source] of Object.entries(config.sources)) {
    // Only a configured start can lie beyond Okta's retention; without one the VM need not start.
    if (!source.start_from) continue;
    // The built-in script moves a start only when it lies beyond Okta's 90 days (src/script/okta.lua);
    // a start well inside them needs no dry run, and validate then never starts the Lua VM.
    if (!source.script && Date.parse(source.start_from) > Date.now() - BUILT_IN_QUIET_MS) continue;
    const { loadCollectionScript } = await import('../script/index.js');
    const logic = await loadCollectionScript({
      path: source.script ?? undefined,
      log: (level, message) => {
        if (level === 'warn' || level === 'error') warnings.push(`sources.${name}: ${message}`);
      },
    });
    try {
      await logic.initialState({ startFrom: source.start_from, now: new Date().toISOString() });
    } catch (err) {
      problems.push(`sources.${name}.start_from: ${errorMessage(err)}`);
    } finally {
      await logic.close();
    }
  }
  return warnings;
}
