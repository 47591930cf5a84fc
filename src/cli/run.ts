import { Command, Option } from '@commander-js/extra-typings';
import type { Config, LogFormat, LogLevel } from '../config/schema.js';
import type { SourceOutcome } from '../pipeline/pipeline.js';
import type { ConsoleStatus } from '../console/status.js';
import type { ApiServer } from '../telemetry/http-server.js';
import type { Logger } from '../telemetry/logger.js';
import type { ProgressTelemetry } from '../telemetry/progress.js';
import type { ReadinessSource, ReadinessTracker } from '../telemetry/readiness.js';
import type { TelemetrySink } from '../telemetry/telemetry.js';
import { EXIT_FAILURE, EXIT_OK, exitCodeFor } from './exit-codes.js';
import { VERSION } from '../core/version.js';
import { OktailError } from '../core/errors.js';

// Every module below the command line is imported when a command runs, not when the CLI starts: `--help`,
// `validate` and `state` would otherwise pay for the HTTP stack, the Lua VM and the logger they never use.

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
    .addOption(logFormatOption())
    .option('-q, --quiet', 'no live progress lines on the terminal')
    .action(async (opts) => {
      const { loadConfig } = await import('../config/load.js');
      const config = await loadConfig(opts.config);
      const { log, progress } = await runLogging(config, opts);
      process.exitCode = await runPipeline(config, log, {
        once: opts.once === true,
        progress,
        configPath: opts.config,
      });
    });
}

export const logFormatOption = () =>
  new Option('--log-format <format>', 'json, or pretty for people (default: pretty on a terminal)').choices([
    'json',
    'pretty',
  ] as const);

/** The logger and the live progress lines of `run` and `demo`, from the flags and the config. */
export async function runLogging(
  config: Config,
  flags: { logLevel?: LogLevel; logFormat?: LogFormat; quiet?: boolean },
): Promise<{ log: Logger; progress: ProgressTelemetry | null }> {
  const { ProgressTelemetry, progressWanted } = await import('../telemetry/progress.js');
  const { createLogger, resolveLogFormat } = await import('../telemetry/logger.js');
  const wanted = progressWanted({
    stderr: process.stderr,
    stdout: process.stdout,
    quiet: flags.quiet === true,
    stdoutSink: Object.values(config.sinks).some((s) => s.type === 'stdout'),
  });
  const progress = wanted ? new ProgressTelemetry({ stream: process.stderr }) : null;
  const log = createLogger({
    level: flags.logLevel ?? config.log.level,
    format: resolveLogFormat(flags.logFormat, config.log.format),
    colorize: process.stderr.isTTY === true,
    ...(progress ? { destination: progress.logDestination() } : {}),
  });
  return { log, progress };
}

/**
 * When a source counts as stuck for /ready: it finishes a cycle every interval, and one cycle may
 * wait out a slow request on top of a late start.
 */
export function readinessSources(config: Config): ReadinessSource[] {
  return Object.entries(config.sources)
    .filter(([, cfg]) => cfg.enabled !== false)
    .map(([name, cfg]) => ({
      name,
      staleAfterMs: (2 * cfg.interval_secs + cfg.request_timeout_secs) * 1000,
    }));
}

/** Runs until a signal (or, with once, one cycle), and turns the outcome into an exit code. */
export async function runPipeline(
  config: Config,
  log: Logger,
  options: {
    once: boolean;
    stdout?: NodeJS.WritableStream;
    progress?: ProgressTelemetry | null;
    configPath?: string;
  },
): Promise<number> {
  const { DataDirLock } = await import('../pipeline/lock.js');
  const { LogTelemetry, TeeTelemetry } = await import('../telemetry/telemetry.js');
  const clustered = config.state?.backend === 'postgres';
  if (clustered && options.once) {
    throw new OktailError(
      'CONFIG_INVALID',
      '--once cannot be used with state.backend: postgres: the replicas share the sources as they run',
    );
  }
  if (clustered && config.console) {
    throw new OktailError(
      'CONFIG_INVALID',
      "console cannot be used with state.backend: postgres: it edits one host's config file, and the replicas " +
        'must all run the same one',
    );
  }
  // Before the checkpoint is read: a second collector on the same data_dir would commit over this one.
  // Replicas sharing PostgreSQL coordinate through leases there instead, wherever they run.
  const lock = clustered ? null : await DataDirLock.acquire(config.data_dir, 'run');
  const progress = options.progress ?? null;
  let api: ApiServer | null = null;
  let readiness: ReadinessTracker | undefined;
  try {
    const logTelemetry = new LogTelemetry(log);
    // Progress first: its line goes away before the log prints the cycle's summary.
    let telemetry: TelemetrySink = progress ? new TeeTelemetry([progress, logTelemetry]) : logTelemetry;
    if (config.api) {
      // Loaded only when the endpoint is on: prom-client adds a few hundred ms to every start.
      const { MetricsTelemetry } = await import('../telemetry/metrics.js');
      const { ApiServer } = await import('../telemetry/http-server.js');
      const { parseAddress } = await import('../config/schema.js');
      const metrics = new MetricsTelemetry({
        next: telemetry,
        sources: readinessSources(config),
        sinks: Object.entries(config.sinks).map(([name, s]) => ({ name, type: s.type, inputs: s.inputs })),
        defaultMetrics: true,
        version: VERSION,
        cluster: config.state?.backend === 'postgres',
      });
      api = new ApiServer({ ...parseAddress(config.api.address), endpoints: metrics, log });
      await api.start().catch((err: NodeJS.ErrnoException) => {
        throw new Error(`api.address: cannot listen on ${config.api!.address} (${err.code ?? err.message})`);
      });
      telemetry = metrics;
      readiness = metrics.readiness;
    }
    let consoleStatus: ConsoleStatus | null = null;
    if (config.console && !options.once) {
      if (options.configPath === undefined) {
        throw new Error('the console needs the config file it edits');
      }
      const { ConsoleStatus } = await import('../console/status.js');
      consoleStatus = new ConsoleStatus();
      telemetry = new TeeTelemetry([telemetry, consoleStatus]);
    }
    return await collect(config, log, telemetry, { ...options, consoleStatus, readiness });
  } finally {
    progress?.stop();
    await api?.stop();
    await lock?.release();
  }
}

async function collect(
  config: Config,
  log: Logger,
  telemetry: TelemetrySink,
  options: {
    once: boolean;
    stdout?: NodeJS.WritableStream;
    configPath?: string;
    consoleStatus: ConsoleStatus | null;
    /** `/ready`'s tracker, which the console keeps in step with the sources it starts and stops. */
    readiness?: ReadinessTracker | undefined;
  },
): Promise<number> {
  const { buildPipeline } = await import('../pipeline/build.js');
  const consoleStatus = options.consoleStatus;
  // With the console every source is started through it (so it sees each one's pages), and the
  // collector keeps running with no source at all: the first one may still be added in the browser.
  // A disabled source stays in the config (and its checkpoint in the state) but is not collected.
  const enabled = Object.fromEntries(
    Object.entries(config.sources).filter(([, cfg]) => cfg.enabled !== false),
  );
  // A replica (state.backend: postgres) starts with no source: the leases it takes decide.
  const { clusterState, startReplica } = await import('../cluster/replica.js');
  const replica = clusterState(config)
    ? await startReplica(
        { ...config, sources: enabled },
        { log, telemetry, stdout: options.stdout, configPath: options.configPath },
      )
    : null;
  const built =
    replica?.built ??
    (await buildPipeline(
      { ...config, sources: consoleStatus ? {} : enabled },
      {
        log,
        telemetry,
        once: options.once,
        stdout: options.stdout,
        configPath: options.configPath,
        keepAlive: consoleStatus !== null,
      },
    ));
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, 'Second signal: exiting now; the next start resumes from the last checkpoint.');
      process.exit(EXIT_FAILURE);
    }
    log.info({ signal }, 'Stopping: finishing the page in delivery, then exiting.');
    replica?.coordinator.drain();
    controller.abort(new Error(`received ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcomes: SourceOutcome[];
  let consoleServer: { stop(): Promise<void> } | null = null;
  try {
    const running = built.pipeline.run(controller.signal);
    // The coordinator adds the sources whose leases it takes once the pipeline is up.
    const join: { error?: Error } = {};
    if (replica) {
      await replica.coordinator.start().catch((err: unknown) => {
        join.error = err instanceof Error ? err : new Error(String(err));
        controller.abort(err);
      });
    }
    if (consoleStatus) {
      try {
        const { startConsole } = await import('../console/index.js');
        consoleServer = await startConsole({
          config,
          configPath: options.configPath!,
          built,
          status: consoleStatus,
          log,
          ...(options.readiness ? { readiness: options.readiness } : {}),
        });
      } catch (err) {
        controller.abort(err);
        await running.catch(() => {});
        throw err;
      }
    }
    outcomes = await running;
    if (join.error) throw join.error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await consoleServer?.stop();
    // A replica releases its leases only now, once every source committed its last page.
    await (replica ?? built).close();
  }
  const failed = outcomes.filter((o) => o.status === 'halted' || o.status === 'failed');
  log.info({ outcomes: outcomes.map((o) => ({ source: o.source, status: o.status })) }, 'Stopped.');
  if (controller.signal.aborted && !options.once) return EXIT_OK;
  const first = failed[0];
  return first ? exitCodeFor(first.error) : EXIT_OK;
}
