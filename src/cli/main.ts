import { Command, CommanderError } from '@commander-js/extra-typings';
import { VERSION } from './version.js';
import { EXIT_USAGE, exitCodeFor } from './exit-codes.js';
import { registerCommands } from './commands.js';

const program = new Command('oktail')
  .description("Collects an Okta org's System Log into files and pipelines, every event exactly once.")
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride();

registerCommands(program);
// Subcommands added with addCommand do not inherit these; without them commander exits by itself
// (with 1) on a usage error instead of letting us map it to 2.
const configure = (cmd: Command): void => {
  for (const sub of cmd.commands as Command[]) {
    sub.exitOverride().showHelpAfterError();
    configure(sub);
  }
};
configure(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version are "errors" to commander; everything else is a usage error.
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
  } else {
    process.stderr.write(`oktail: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
}
