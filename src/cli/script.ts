import { Command } from '@commander-js/extra-typings';
import { EXIT_USAGE } from './exit-codes.js';

export function scriptCommand() {
  const script = new Command('script').description('work with collection scripts');
  script
    .command('print')
    .description('write a built-in collection script to stdout, as a starting point for your own')
    .argument('<name>', 'built-in script name (okta)')
    .action(async (name) => {
      if (name !== 'okta') {
        process.stderr.write(`oktail: there is no built-in script "${name}" (built-in: okta)\n`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      const { builtinScriptSource } = await import('../script/index.js');
      process.stdout.write(await builtinScriptSource());
    });
  return script;
}
