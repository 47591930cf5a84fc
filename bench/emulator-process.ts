/*
 * The project's Okta emulator in a process of its own, driven over IPC by bench/run.ts: the collectors
 * under test never share an event loop (or a CPU measurement) with it. It serves a deterministic set of
 * events, writes their raw bytes to a file for the byte-identity check, and reports its request log.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { OktaEmulator, type EmulatorStats } from '../src/emulator/emulator.js';
import { generateEvents } from '../src/emulator/events.js';
import { createTestPki, writePki } from '../src/emulator/pki.js';

export interface EmulatorConfig {
  /** Events the org holds. */
  events: number;
  /** Distinct events generated; the org holds them repeated until `events` (saves memory at 1M). */
  pool?: number;
  seed: number;
  rateLimit?: { limit: number; windowMs: number } | null;
  latencyMs?: number;
  /** How many API tokens to accept (a second client gets its own, to tell its requests apart). */
  tokens: number;
  /** Where to write the pool's raw events, one per line, exactly as served. */
  rawFile?: string;
  /** Folder for the test PKI. */
  dir: string;
}

export interface EmulatorReady {
  type: 'ready';
  origin: string;
  domain: string;
  caFile: string;
  tokens: string[];
  pool: number;
}

/** One request as the emulator logged it (local clock). */
export interface LoggedRequest {
  at: number;
  status: number | null;
  tokenIndex: number | null;
  events: number;
  limit: string | undefined;
}

export interface EmulatorReport {
  type: 'report';
  stats: EmulatorStats;
  requests: LoggedRequest[];
}

export type EmulatorCommand = { cmd: 'report' } | { cmd: 'reset' } | { cmd: 'stop' };

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as EmulatorConfig;
  const pki = await createTestPki();
  const files = await writePki(pki, config.dir);
  const tokens = Array.from(
    { length: config.tokens },
    () => `00bench${randomBytes(18).toString('base64url')}`,
  );
  const emulator = new OktaEmulator({
    tls: pki.server,
    tokens,
    rateLimit: config.rateLimit ?? null,
    latencyMs: config.latencyMs ?? 0,
    // The bench's processes talk to it for minutes; keep idle connections open as long as they like.
    keepAliveTimeoutMs: 600_000,
  });
  const pool = Math.min(config.pool ?? config.events, config.events);
  // A fixed start makes the events identical from run to run (with the seed), so results compare.
  const records = generateEvents(pool, {
    seed: config.seed,
    publishedStart: Date.UTC(2026, 0, 1),
    stepMs: 7,
  });
  for (let held = 0; held < config.events; held += pool) {
    emulator.append(held + pool <= config.events ? records : records.slice(0, config.events - held));
  }
  if (config.rawFile) {
    await writeFile(config.rawFile, records.map((r) => r.raw.toString('utf8')).join('\n') + '\n');
  }
  const address = await emulator.start();

  process.on('message', (message: EmulatorCommand) => {
    switch (message.cmd) {
      case 'report': {
        const report: EmulatorReport = {
          type: 'report',
          stats: emulator.stats(),
          requests: emulator.requests.map((r) => ({
            at: r.at,
            status: r.status,
            tokenIndex: r.tokenIndex,
            events: r.events,
            limit: r.query.limit,
          })),
        };
        process.send!(report);
        break;
      }
      case 'reset':
        emulator.resetStats();
        // A fresh bucket too, so one contender's spending never shows in the next one's window.
        emulator.setRateLimit(config.rateLimit ?? null);
        process.send!({ type: 'reset' });
        break;
      case 'stop':
        void emulator.stop().finally(() => process.disconnect());
        break;
    }
  });
  process.on('disconnect', () => void emulator.stop());

  const ready: EmulatorReady = {
    type: 'ready',
    origin: address.origin,
    domain: address.domain,
    caFile: files.caFile,
    tokens,
    pool,
  };
  process.send!(ready);
}

main().catch((err: unknown) => {
  process.stderr.write(`Emulator process failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
