import { join } from 'node:path';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { buildPipeline } from '../src/pipeline/build.js';
import type { SourceOutcome } from '../src/pipeline/pipeline.js';
import { silentLogger } from '../src/telemetry/logger.js';
import { LogTelemetry, type TelemetryEvent } from '../src/telemetry/telemetry.js';
import { HOUR, ago, compareDelivery, readLines, until, useOrg, type TestOrg } from './support/harness.js';

/*
 * The limiter against the emulator's org-wide bucket, through the real pipeline. The emulator's
 * `X-Rate-Limit-Reset` and `Date` have one-second resolution (as Okta's do), so windows are 5 s: short
 * enough for tests of seconds, long enough that a second of rounding cannot hide a wrong reading.
 */

const WINDOW_MS = 5_000;
const LIMIT = 20;
const PAGE = 1000;

let org: TestOrg | undefined;
const startOrg = useOrg();

interface Observation extends TelemetryEvent<'rateLimitObserved'> {
  at: number;
}

/** Keeps what the source reports about the bucket instead of logging it. */
class Recorder extends LogTelemetry {
  readonly observed: Observation[] = [];
  readonly waits: TelemetryEvent<'rateLimitWait'>[] = [];
  readonly failures: TelemetryEvent<'requestFailed'>[] = [];

  constructor() {
    super(silentLogger());
  }
  override rateLimitObserved(e: TelemetryEvent<'rateLimitObserved'>): void {
    this.observed.push({ ...e, at: Date.now() });
  }
  override rateLimitWait(e: TelemetryEvent<'rateLimitWait'>): void {
    this.waits.push(e);
  }
  override requestFailed(e: TelemetryEvent<'requestFailed'>): void {
    this.failures.push(e);
  }
}

interface RunOptions {
  maxShare: number;
  minRemaining: number;
}

interface RunResult {
  recorder: Recorder;
  outcomes: SourceOutcome[];
  ms: number;
  out: string;
}

/** One `run --once` of the real pipeline (config parsing included) against `o`, in this process. */
async function collectOnce(o: TestOrg, options: RunOptions): Promise<RunResult> {
  const out = join(o.dir, 'out', 'okta.ndjson');
  const yaml = [
    `data_dir: ${JSON.stringify(join(o.dir, 'data'))}`,
    'sources:',
    '  okta:',
    '    type: okta',
    `    domain: "${o.domain}"`,
    `    start_from: ${ago(2 * HOUR)}`,
    '    rate_limit:',
    `      max_share: ${options.maxShare}`,
    `      min_remaining: ${options.minRemaining}`,
    '    auth:',
    '      token: ${OKTA_API_TOKEN}',
    '    tls:',
    '      enabled: true',
    `      ca_file: ${JSON.stringify(o.files.caFile)}`,
    'sinks:',
    '  archive:',
    '    type: file',
    '    inputs: [okta]',
    `    path: ${JSON.stringify(out)}`,
  ].join('\n');
  const config = parseConfig(yaml, { baseDir: o.dir, env: { OKTA_API_TOKEN: o.token } });
  const recorder = new Recorder();
  const built = await buildPipeline(config, { log: silentLogger(), telemetry: recorder, once: true });
  const started = performance.now();
  try {
    // A deadline for a hung run only: these runs pace themselves over windows, and a busy machine (three
    // run at once in one test) stretches them.
    const outcomes = await built.pipeline.run(AbortSignal.timeout(100_000));
    return { recorder, outcomes, ms: performance.now() - started, out };
  } finally {
    await built.close();
  }
}

/** A backlog that takes `pages` requests to drain: full pages and a short one that ends the cycle. */
function addBacklog(o: TestOrg, pages: number): void {
  o.emulator.appendEvents((pages - 1) * PAGE + PAGE / 2, { publishedStart: Date.now() - HOUR, seed: 3 });
}

/**
 * Our requests grouped into the bucket's windows by what the responses said: a `remaining` higher than
 * the previous response's means a new window began. Returns how many of our requests each window saw.
 */
function windowsSeen(observed: readonly Observation[]): number[] {
  const windows: number[] = [];
  let last = Infinity;
  for (const o of observed) {
    if (windows.length === 0 || o.remaining >= last) windows.push(0);
    windows[windows.length - 1]!++;
    last = o.remaining;
  }
  return windows;
}

/**
 * Gaps between our consecutive requests, as the emulator saw them arrive, inside the windows that are
 * neither the first nor the last (`sizes` from `windowsSeen`).
 */
function innerGaps(o: TestOrg, sizes: readonly number[]): number[] {
  const arrivals = o.emulator.requests.filter((r) => r.status === 200).map((r) => r.at);
  const gaps: number[] = [];
  let i = sizes[0] ?? 0;
  for (const size of sizes.slice(1, -1)) {
    for (let k = i + 1; k < i + size; k++) gaps.push(arrivals[k]! - arrivals[k - 1]!);
    i += size;
  }
  return gaps;
}

const SHARE = 0.5;
const ALLOWED = LIMIT * SHARE;

/** A backlog run alone against an org whose clock is `skewMs` off ours. */
async function backfillAlone(skewMs: number, pages: number) {
  const o = await startOrg({ rateLimit: { limit: LIMIT, windowMs: WINDOW_MS }, clockSkewMs: skewMs });
  try {
    addBacklog(o, pages);
    const run = await collectOnce(o, { maxShare: SHARE, minRemaining: 2 });
    const delivered = compareDelivery(await readLines(run.out), o.emulator.allEvents());
    const gaps = innerGaps(o, windowsSeen(run.recorder.observed));
    return { run, delivered, gaps, stats: o.emulator.stats() };
  } finally {
    await o.stop();
  }
}

describe(
  'rate limiting against the emulator (limit 20 per 5 s window, max_share 0.5)',
  { timeout: 120_000 },
  () => {
    it('drains a backlog at its whole share, spread over each window, with zero 429s when alone', async () => {
      const { run, delivered, gaps, stats } = await backfillAlone(0, 22);

      expect(run.outcomes.map((o) => o.status)).toEqual(['completed']);
      expect(delivered).toBeNull();
      expect(stats.rateLimited).toBe(0);
      // Never more than its share in any window...
      expect(Math.min(...run.recorder.observed.map((o) => o.remaining))).toBe(LIMIT - ALLOWED);
      // ...all of it in every window it spanned from start to end...
      const windows = windowsSeen(run.recorder.observed);
      expect(windows.length).toBeGreaterThanOrEqual(3);
      expect(windows.slice(1, -1), String(windows)).toEqual(windows.slice(1, -1).map(() => ALLOWED));
      // ...spread evenly: a slot is 500 ms, so no two requests come close together.
      expect(Math.min(...gaps)).toBeGreaterThan((WINDOW_MS / ALLOWED) * 0.5);
    });

    it('gives the same pacing when the server clock is ten minutes ahead or behind', async () => {
      const runs = await Promise.all([0, 600_000, -600_000].map((skew) => backfillAlone(skew, 16)));

      const [straight, ahead, behind] = runs.map(({ run, delivered, stats }) => {
        expect(run.outcomes.map((o) => o.status)).toEqual(['completed']);
        expect(delivered).toBeNull();
        expect(stats.rateLimited).toBe(0);
        expect(Math.min(...run.recorder.observed.map((o) => o.remaining))).toBeGreaterThanOrEqual(
          LIMIT - ALLOWED,
        );
        // A reset read against our clock would mean a ten-minute wait (ahead) or none at all (behind).
        expect(Math.max(...run.recorder.waits.map((w) => w.waitMs))).toBeLessThan(WINDOW_MS + 1_000);
        const windows = windowsSeen(run.recorder.observed);
        expect(windows.slice(1, -1), String(windows)).toEqual(windows.slice(1, -1).map(() => ALLOWED));
        return windows.length;
      }) as [number, number, number];
      // 16 requests at 10 per window: two or three windows however the start falls, so within one window
      // of each other (counted from the responses, not timed: a busy machine stretches every run).
      expect(Math.abs(ahead - straight)).toBeLessThanOrEqual(1);
      expect(Math.abs(behind - straight)).toBeLessThanOrEqual(1);
    });

    it('backs off before the bucket runs dry when another client drains it, leaving min_remaining', async () => {
      org = await startOrg({ rateLimit: { limit: LIMIT, windowMs: WINDOW_MS } });
      // Enough for a first window, one full window (8 for us: 20 - 10 theirs - 2) and a last one.
      addBacklog(org, 20);
      const emulator = org.emulator;
      // Another integration spends half the bucket at a steady pace: one request every 500 ms of the
      // emulator's clock, mid-slot so that none falls on a window boundary. The emulator charges them as
      // their instants pass, so late timers on a busy machine cannot move one into the next window.
      const other = emulator.spendSteadily(WINDOW_MS / (LIMIT / 2));
      const theirs = other.perWindow;
      let run: RunResult;
      try {
        run = await collectOnce(org, { maxShare: SHARE, minRemaining: 2 });
      } finally {
        other.stop();
      }

      expect(run.outcomes.map((o) => o.status)).toEqual(['completed']);
      expect(compareDelivery(await readLines(run.out), emulator.allEvents())).toBeNull();
      expect(emulator.stats().rateLimited).toBe(0);
      expect(run.recorder.waits.some((w) => w.reason === 'bucket-low')).toBe(true);
      // In every window after the first (where it has not yet seen what the other client spends), the
      // bucket ends with at least min_remaining left: oktail kept room for the other client's requests
      // still to come, not only for the headroom.
      const ours = new Map<number, number>();
      for (const r of emulator.requests) {
        const w = Math.floor(r.at / WINDOW_MS);
        if (r.status === 200) ours.set(w, (ours.get(w) ?? 0) + 1);
      }
      const windows = [...ours.keys()].sort((a, b) => a - b).slice(1, -1);
      expect(windows.length).toBeGreaterThanOrEqual(1);
      const left = windows.map((w) => LIMIT - ours.get(w)! - (theirs.get(w) ?? 0));
      // oktail learns the other client's pace from the Remaining it sees between its own responses, whole
      // requests over a span its own pacing chooses, so a sample can show the other client up to a request
      // slower than it is, and oktail may take one request of min_remaining's room. Zero 429s above is
      // exact; this allows that one request of slack, never more.
      expect(Math.min(...left), String(left)).toBeGreaterThanOrEqual(1);
    });

    it('retries a concurrency 429 (X-Rate-Limit-Limit: 0) after a short pause, not a window', async () => {
      // A long window: waiting for its reset would blow the test's time limit.
      org = await startOrg({ rateLimit: { limit: 100, windowMs: 60_000 }, concurrencyLimit: 1 });
      addBacklog(org, 2);
      const emulator = org.emulator;
      // Another client's slow request holds the org's only concurrent slot until the collector has been
      // refused for it (held by the emulator, not timed).
      const hold = emulator.holdFrom(1, 1);
      const dispatcher = new Agent({ connect: { ca: org.pki.caCert } });
      const blocker = request(`${org.origin}/api/v1/logs?limit=1`, {
        dispatcher,
        headers: { authorization: `SSWS ${org.token}` },
      });
      await hold.arrived(1);

      const running = collectOnce(org, { maxShare: SHARE, minRemaining: 2 });
      await until(() => emulator.stats().concurrencyLimited >= 1, 'a concurrency 429');
      hold.end();
      const run = await running;
      await (await blocker).body.dump();
      await dispatcher.close();

      expect(run.outcomes.map((o) => o.status)).toEqual(['completed']);
      expect(compareDelivery(await readLines(run.out), emulator.allEvents())).toBeNull();
      expect(emulator.stats().concurrencyLimited).toBeGreaterThanOrEqual(1);
      const retries = run.recorder.failures.filter((f) => f.status === 429);
      expect(retries.length).toBe(emulator.stats().concurrencyLimited);
      for (const r of retries) {
        expect(r.retryInMs).toBeGreaterThanOrEqual(1_000);
        expect(r.retryInMs).toBeLessThanOrEqual(3_000);
      }
      // Never a wait for the 60 s window: the pause was the short concurrency one.
      expect(Math.max(0, ...run.recorder.waits.map((w) => w.waitMs))).toBeLessThan(10_000);
    });
  },
);
