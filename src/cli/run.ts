import { Command, Option } from '@commander-js/extra-typings';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { buildPipeline } from '../pipeline/build.js';
import type { SourceOutcome } from '../pipeline/pipeline.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { LogTelemetry } from '../telemetry/telemetry.js';
import { EXIT_FAILURE, EXIT_OK, exitCodeFor } from './exit-codes.js';

export const logLevelOption = () =>
  new Option('--log-level <level>', 'log level').choices([
    'trace',
    'debug',
    'info',
    'warn',
    'error',
    'fatal',
    'silent',
  ] as const);

export function runCommand() {
  return new Command('run')
    .description('collect from every configured source into the sinks')
    .requiredOption('-c, --config <file>', 'config file (YAML)')
    .option('--once', 'run one cycle per source (until caught up), commit, flush and exit')
    .addOption(logLevelOption())
    .action(async (opts) => {
      const config = await loadConfig(opts.config);
      const log = createLogger({ level: opts.logLevel ?? config.log?.level });
      process.exitCode = await runPipeline(config, log, { once: opts.once === true });
    });
}

/** Runs until a signal (or, with once, one cycle), and turns the outcome into an exit code. */
export async function runPipeline(
  config: Config,
  log: Logger,
  options: { once: boolean; stdout?: NodeJS.WritableStream },
): Promise<number> {
  const telemetry = new LogTelemetry(log);
  const built = await buildPipeline(config, { log, telemetry, once: options.once, stdout: options.stdout });
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, 'Second signal: exiting now; the next start resumes from the last checkpoint.');
      process.exit(EXIT_FAILURE);
    }
    log.info({ signal }, 'Stopping: finishing the page in delivery, then exiting.');
    controller.abort(new Error(`received ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcomes: SourceOutcome[];
  try {
    outcomes = await built.pipeline.run(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await built.close();
  }
  const failed = outcomes.filter((o) => o.status === 'halted' || o.status === 'failed');
  log.info({ outcomes: outcomes.map((o) => ({ source: o.source, status: o.status })) }, 'Stopped.');
  if (controller.signal.aborted && !options.once) return EXIT_OK;
  const first = failed[0];
  return first ? exitCodeFor(first.error) : EXIT_OK;
}
