import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { OktaEmulator } from './emulator.js';
import { createTestPki, writePki } from './pki.js';

/**
 * The emulator as its own process, for benchmarks and crash tests that must not share an event loop
 * with the collector. Prints one JSON line describing how to reach it, then serves until SIGTERM/SIGINT.
 */

const USAGE = `Usage: node dist/emulator/main.js --events N [--port P] [--host 127.0.0.1|localhost]
  [--rate-limit L [--window-ms W]] [--latency-ms M] [--clock-skew-ms S] [--concurrency-limit C]
  [--seed N] [--dir DIR]`;

function intOption(
  values: Record<string, string | boolean | undefined>,
  name: string,
  min: number,
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${name} must be an integer >= ${min} (got ${String(raw)})`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      events: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'rate-limit': { type: 'string' },
      'window-ms': { type: 'string' },
      'latency-ms': { type: 'string' },
      'clock-skew-ms': { type: 'string' },
      'concurrency-limit': { type: 'string' },
      seed: { type: 'string' },
      dir: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const events = intOption(values, 'events', 0) ?? 0;
  const rateLimit = intOption(values, 'rate-limit', 1);
  const host = values.host ?? '127.0.0.1';
  if (host !== '127.0.0.1' && host !== 'localhost') throw new Error('--host must be 127.0.0.1 or localhost');

  const ownDir = values.dir === undefined;
  const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'oktail-emulator-')));
  const pki = await createTestPki();
  const files = await writePki(pki, dir);
  // Test tooling, not a secret: it is printed so that the process starting this one can use it.
  const token = randomBytes(24).toString('base64url');

  const emulator = new OktaEmulator({
    tls: pki.server,
    tokens: [token],
    host,
    port: intOption(values, 'port', 0) ?? 0,
    rateLimit:
      rateLimit === undefined ? null : { limit: rateLimit, windowMs: intOption(values, 'window-ms', 1) },
    latencyMs: intOption(values, 'latency-ms', 0),
    clockSkewMs: values['clock-skew-ms'] === undefined ? undefined : Number(values['clock-skew-ms']),
    concurrencyLimit: intOption(values, 'concurrency-limit', 1),
  });
  const seed = intOption(values, 'seed', 0);
  emulator.appendEvents(events, seed === undefined ? {} : { seed });
  const address = await emulator.start();

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void emulator
      .stop()
      .then(() => (ownDir ? rm(dir, { recursive: true, force: true }) : undefined))
      .catch((err: unknown) => {
        process.stderr.write(`Emulator did not stop cleanly: ${String(err)}\n`);
        process.exitCode = 1;
      });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);

  process.stdout.write(
    JSON.stringify({ origin: address.origin, domain: address.domain, caFile: files.caFile, token, events }) +
      '\n',
  );
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
  process.exitCode = 2;
});
