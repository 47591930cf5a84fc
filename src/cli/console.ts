import { Command } from '@commander-js/extra-typings';
import { OktailError } from '../core/errors.js';
import { EXIT_OK } from './exit-codes.js';

export function consoleCommand() {
  const console = new Command('console').description('the web console (see the console block of the config)');
  console.addCommand(
    new Command('token')
      .description('make a new console access token and print its sign-in URL (ends every session)')
      .requiredOption('-c, --config <file>', 'config file (YAML)')
      .option(
        '--rotate',
        'replace the access token (the only way to see a token again: only its hash is kept)',
      )
      .action(async (opts) => {
        if (!opts.rotate) {
          throw new OktailError(
            'CONFIG_INVALID',
            'only its hash is stored, so the token cannot be shown again; use --rotate to make a new one',
          );
        }
        const { loadConfig } = await import('../config/load.js');
        // Never contacts Okta: works without the token's variable set, like the state commands.
        const config = await loadConfig(opts.config, process.env, { secrets: 'unresolved' });
        if (!config.console) {
          throw new OktailError('CONFIG_INVALID', `${opts.config} has no console block`);
        }
        const { rotateConsoleToken } = await import('../console/token.js');
        const { signInUrl } = await import('../console/index.js');
        const token = await rotateConsoleToken(config.data_dir);
        const scheme = config.console.tls ? 'https' : 'http';
        process.stdout.write(
          `${signInUrl(`${scheme}://${config.console.address}`, token)}\n` +
            'Earlier sign-in links and sessions no longer work. A running collector accepts the new token at once.\n',
        );
        process.exitCode = EXIT_OK;
      }),
  );
  return console;
}
