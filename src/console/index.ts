import { readFile } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import { parseAddress } from '../config/schema.js';
import { OktailError } from '../core/errors.js';
import type { BuiltPipeline } from '../pipeline/build.js';
import type { Logger } from '../telemetry/logger.js';
import { ConfigFile } from './config-file.js';
import { SourceController, type ConsoleReadiness } from './controller.js';
import { ConsoleServer } from './server.js';
import type { ConsoleStatus } from './status.js';
import { ensureConsoleToken } from './token.js';

export { ConsoleStatus } from './status.js';

export interface RunningConsole {
  origin: string;
  stop(): Promise<void>;
}

/** The sign-in URL for a token: the one place the token is ever shown. */
export function signInUrl(origin: string, token: string): string {
  return `${origin}/?token=${encodeURIComponent(token)}`;
}

async function readTlsFile(path: string, key: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new OktailError(
      'CONFIG_INVALID',
      `console.tls.${key}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      false,
      { cause: err },
    );
  }
}

/**
 * Serves the console for a running pipeline and starts the config's sources through it. The pipeline
 * was built without sources (and with keepAlive): every source is added here, so the console sees each
 * one's pages and can stop, replace or add sources while the others run.
 */
export async function startConsole(options: {
  config: Config;
  configPath: string;
  built: Pick<BuiltPipeline, 'pipeline' | 'createSource'>;
  status: ConsoleStatus;
  log: Logger;
  readiness?: ConsoleReadiness;
}): Promise<RunningConsole> {
  const { config, log } = options;
  const consoleConfig = config.console;
  if (!consoleConfig) throw new OktailError('INTERNAL', 'startConsole without a console block');
  const tls = consoleConfig.tls
    ? {
        cert: await readTlsFile(consoleConfig.tls.crt_file, 'crt_file'),
        key: await readTlsFile(consoleConfig.tls.key_file, 'key_file'),
      }
    : undefined;
  const { builtinScriptSource, checkCollectionScript } = await import('../script/index.js');
  const controller = new SourceController({
    built: options.built,
    status: options.status,
    log,
    ...(options.readiness ? { readiness: options.readiness } : {}),
  });
  const server = new ConsoleServer({
    ...parseAddress(consoleConfig.address),
    tls,
    dataDir: config.data_dir,
    configFile: new ConfigFile({ file: options.configPath }),
    config,
    status: options.status,
    controller,
    log,
    builtinScript: await builtinScriptSource(),
    scriptProblems: async (path) =>
      (await checkCollectionScript(path)).map((p) =>
        p.line === null ? p.message : `line ${p.line}: ${p.message}`,
      ),
  });
  const origin = await server.start().catch((err: NodeJS.ErrnoException) => {
    throw new OktailError(
      'CONFIG_INVALID',
      `console.address: cannot listen on ${consoleConfig.address} (${err.code ?? err.message})`,
      false,
      { cause: err },
    );
  });
  const token = await ensureConsoleToken(config.data_dir);
  if (token !== null) {
    // Logged once: only the token's hash is kept, so this line is the only place it ever appears.
    log.info(
      { console: origin },
      `Console: sign in at ${signInUrl(origin, token)} (shown only now; oktail console token --rotate makes a new one).`,
    );
  } else {
    log.info(
      { console: origin },
      'Console listening; sign in with the URL logged at its first start, or make a new one with oktail console token --rotate.',
    );
  }
  await controller.startAll(config);
  return { origin, stop: () => server.stop() };
}
