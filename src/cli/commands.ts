import type { Command } from '@commander-js/extra-typings';
import { runCommand } from './run.js';
import { validateCommand } from './validate.js';
import { checkCommand } from './check.js';
import { demoCommand } from './demo.js';
import { scriptCommand } from './script.js';
import { stateCommand } from './state.js';
import { configCommand } from './config-cmd.js';
import { clusterCommand } from './cluster.js';
import { consoleCommand } from './console.js';

/** Every subcommand, in the order `oktail --help` lists them. */
export function registerCommands(program: Command): void {
  program.addCommand(runCommand());
  program.addCommand(checkCommand());
  program.addCommand(validateCommand());
  program.addCommand(stateCommand());
  program.addCommand(clusterCommand());
  program.addCommand(configCommand());
  program.addCommand(consoleCommand());
  program.addCommand(demoCommand());
  program.addCommand(scriptCommand());
}
