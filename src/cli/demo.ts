import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from '@commander-js/extra-typings';
import type { LogFormat, LogLevel } from '../config/schema.js';
import { logFormatOption, logLevelOption, runLogging, runPipeline } from './run.js';

export function demoCommand() {
  return new Command('demo')
    .description('start the built-in Okta System Log emulator on loopback and collect from it to stdout')
    .addOption(
      new Option('--events <n>', 'events already in the emulated org').default(2500).argParser(Number),
    )
    .option('--once', 'collect the backlog once and exit')
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .option('-q, --quiet', 'no live progress lines on the terminal')
    .addOption(
      new Option(
        '--api <address>',
        'serve /metrics, /health and /ready on host:port, e.g. 127.0.0.1:9598',
      ).argParser((value) => {
        // The config's own check runs later; this one only has to catch what is plainly not host:port,
        // without loading the config schema into every start of the CLI.
        if (!/^(\[[0-9A-Fa-f:.]+\]|[^:\s[\]]+):[0-9]{1,5}$/.test(value)) {
          throw new InvalidArgumentError('must be host:port, e.g. 127.0.0.1:9598');
        }
        return value;
      }),
    )
    .addOption(
      new Option(
        '--console <address>',
        'serve the web console on host:port, e.g. 127.0.0.1:8686, and start with no source: add one in the browser',
      ).argParser((value) => {
        if (!/^(\[[0-9A-Fa-f:.]+\]|[^:\s[\]]+):[0-9]{1,5}$/.test(value)) {
          throw new InvalidArgumentError('must be host:port, e.g. 127.0.0.1:8686');
        }
        return value;
      }),
    )
    .action(async (opts) => {
      // Loaded here, not at the top: the emulator's certificate library costs every other command about
      // half a second of CPU and 20 MB of memory at startup.
      const { OktaEmulator } = await import('../emulator/emulator.js');
      const { createTestPki, writePki } = await import('../emulator/pki.js');
      const dir = await mkdtemp(join(tmpdir(), 'oktail-demo-'));
      const pki = await createTestPki();
      const files = await writePki(pki, join(dir, 'pki'));
      // Stands in for a real API token; it only opens the emulator.
      const token = randomBytes(24).toString('base64url');
      const emulator = new OktaEmulator({ tls: pki.server, tokens: [token], rateLimit: { limit: 120 } });
      const hourAgo = Date.now() - 3600_000;
      emulator.appendEvents(opts.events, {
        publishedStart: hourAgo,
        stepMs: Math.max(1, Math.floor(3600_000 / Math.max(1, opts.events))),
      });
      const { domain } = await emulator.start();
      // New events keep arriving, some of them late (published before events already served).
      const live = setInterval(() => {
        emulator.appendEvents(3, { publishedStart: Date.now() - 5_000, stepMs: 1000, outOfOrder: true });
      }, 3000);
      if (opts.console !== undefined) {
        await demoConsole(opts, { dir, domain, token, caFile: files.caFile, hourAgo });
        clearInterval(live);
        await emulator.stop();
        await rm(dir, { recursive: true, force: true });
        return;
      }
      const yaml = [
        `data_dir: ${JSON.stringify(join(dir, 'state'))}`,
        ...(opts.api === undefined ? [] : ['api:', `  address: ${JSON.stringify(opts.api)}`]),
        'sources:',
        '  demo:',
        '    type: okta',
        `    domain: "${domain}"`,
        '    interval_secs: 10',
        `    start_from: ${new Date(hourAgo - 60_000).toISOString()}`,
        '    auth:',
        '      token: ${OKTA_API_TOKEN}',
        '    tls:',
        '      enabled: true',
        `      ca_file: ${JSON.stringify(files.caFile)}`,
        'sinks:',
        '  console:',
        '    type: stdout',
        '    inputs: [demo]',
      ].join('\n');
      const { parseConfig } = await import('../config/load.js');
      const config = parseConfig(yaml, { baseDir: dir, env: { OKTA_API_TOKEN: token }, fileName: 'demo' });
      const { log, progress } = await runLogging(config, opts);
      log.info(
        { emulator: emulator.origin, events: opts.events },
        'Demo: collecting from the built-in Okta emulator to stdout; press Ctrl-C to stop.',
      );
      try {
        process.exitCode = await runPipeline(config, log, { once: opts.once === true, progress });
      } finally {
        clearInterval(live);
        await emulator.stop();
        await rm(dir, { recursive: true, force: true });
      }
    });
}

/**
 * `demo --console`: a config file with the console, a stdout sink and no source yet, so a newcomer adds
 * the emulated org in the browser. The values the form needs are logged (the token only opens the
 * emulator).
 */
async function demoConsole(
  opts: {
    console?: string;
    once?: true;
    logLevel?: LogLevel;
    logFormat?: LogFormat;
    quiet?: true;
    api?: string;
  },
  demo: { dir: string; domain: string; token: string; caFile: string; hourAgo: number },
): Promise<void> {
  const file = join(demo.dir, 'oktail.yaml');
  const yaml = [
    '# Written by oktail demo --console; the console adds sources below.',
    `data_dir: ${JSON.stringify(join(demo.dir, 'state'))}`,
    ...(opts.api === undefined ? [] : ['api:', `  address: ${JSON.stringify(opts.api)}`]),
    'console:',
    `  address: ${JSON.stringify(opts.console)}`,
    'sources: {}',
    'sinks:',
    '  console:',
    '    type: stdout',
    '    inputs: []',
  ].join('\n');
  await writeFile(file, yaml + '\n');
  const { loadConfig } = await import('../config/load.js');
  const config = await loadConfig(file);
  const { log, progress } = await runLogging(config, opts);
  log.info(
    {
      okta_domain: demo.domain,
      auth_token: demo.token,
      ca_certificate_file: demo.caFile,
      start_from: new Date(demo.hourAgo - 60_000).toISOString(),
    },
    `Demo: the built-in Okta emulator runs at ${demo.domain}. In the console, add an Okta Logs Collector with Okta Domain ${demo.domain}, Auth Token ${demo.token}, Use custom TLS on and CA Certificate File ${demo.caFile}; Start From ${new Date(demo.hourAgo - 60_000).toISOString()} collects the hour of events it holds.`,
  );
  process.exitCode = await runPipeline(config, log, { once: false, progress, configPath: file });
}
