/*
 * `npm run bench`: oktail against the collectors users would write or pick instead, each in its own
 * process, against the project's Okta emulator in another process over HTTPS on loopback. Writes
 * bench/results/<scenario>.json and docs/performance.md.
 *
 *   node bench/tmp/bench/run.js [--quick] [--only startup,throughput,rate-limited,shared-bucket,rss-1m,sinks,scale]
 *                               [--events N] [--rounds R] [--baseline-build DIR]
 *                               [--sink-events N] [--sink-rounds R] [--sinks file,postgres,...]
 *
 * --quick shrinks every scenario, --events/--rounds change the throughput scenario and --sink-events/
 * --sink-rounds/--sinks the sinks scenario, for trying things out: only a run at the documented sizes writes
 * results (--only then replaces the chosen scenarios' results and keeps the others'). --baseline-build names a copy of an
 * older build (bin/, dist/, package.json) whose start-up is measured beside this one's; without it the
 * start-up results keep the baseline figures recorded last time.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { EmulatorConfig, EmulatorReady, LoggedRequest } from './emulator-process.js';
import type { OtherClientConfig, OtherClientReport } from './other-client.js';
import {
  BUILT,
  DestinationProcess,
  EmulatorProcess,
  ROOT,
  measure,
  startHelper,
  type Measured,
} from './processes.js';
import { machine, writeReport } from './report.js';
import {
  NETWORK_SINKS,
  type ContenderName,
  type ContenderSummary,
  type LimitedResult,
  type LimitedRun,
  type Machine,
  type MillionResult,
  type RequestCounts,
  type RunResult,
  type SinkRun,
  type SinkSummary,
  type SinksResult,
  type ThroughputResult,
  type WindowUse,
} from './results.js';
import { scale, type ScaleResult } from './scale.js';
import { startup, type StartupResult } from './startup.js';
import { readServed, verifyOutput, type OutputForm } from './verify.js';

// ------------------------------------------------------------------------------------------ contenders

interface RunContext {
  emu: EmulatorReady;
  dir: string;
  out: string;
  since: string;
  /** Events the org holds: bounds the baseline's request loop. */
  events: number;
  rateLimit: { maxShare: number; minRemaining: number };
  deadlineMs: number;
}

interface Contender {
  name: ContenderName;
  form: OutputForm;
  command(ctx: RunContext): Promise<{ args: string[]; env: Record<string, string> }>;
}

const LUA_TRANSFORM = `
-- Adds actor_domain (docs/scripting.md, example 2): a per-event hook, so every event goes through Lua.
function transform(event)
  local actor = event.actor
  if type(actor) == "table" then
    local login = actor.alternateId
    if type(login) == "string" then
      local domain = login:match("@([^@]+)$")
      if domain ~= nil then event.actor_domain = domain:lower() end
    end
  end
  return event
end
`;

/** The cheapest per-event hook: every event still crosses into Lua and back. */
const LUA_IDENTITY = `
function transform(event)
  return event
end
`;

async function oktailCommand(ctx: RunContext, script: string | null, sinkLines?: string[]) {
  const config = join(ctx.dir, 'oktail.yaml');
  const lines = [
    `data_dir: ${JSON.stringify(join(ctx.dir, 'data'))}`,
    'log:',
    '  level: warn',
    'sources:',
    '  okta:',
    '    type: okta',
    `    domain: "${ctx.emu.domain}"`,
    `    start_from: ${ctx.since}`,
    ...(script ? [`    script: ${JSON.stringify(script)}`] : []),
    '    rate_limit:',
    `      max_share: ${ctx.rateLimit.maxShare}`,
    `      min_remaining: ${ctx.rateLimit.minRemaining}`,
    '    auth:',
    '      token: ${OKTA_API_TOKEN}',
    '    tls:',
    '      enabled: true',
    `      ca_file: ${JSON.stringify(ctx.emu.caFile)}`,
    'sinks:',
    ...(sinkLines ?? [
      '  archive:',
      '    type: file',
      '    inputs: [okta]',
      `    path: ${JSON.stringify(ctx.out)}`,
    ]),
  ];
  await writeFile(config, lines.join('\n') + '\n');
  return {
    args: [join(ROOT, 'bin', 'oktail.js'), 'run', '--once', '--quiet', '-c', config],
    env: { OKTA_API_TOKEN: ctx.emu.tokens[0]! },
  };
}

/** The documented way to customise: print the built-in script, append to it, point the config at it. */
async function scriptedCommand(ctx: RunContext, transform: string) {
  const script = join(ctx.dir, 'okta-transform.lua');
  const builtin = await measure({
    args: [join(ROOT, 'bin', 'oktail.js'), 'script', 'print', 'okta'],
    timeoutMs: 30_000,
    usageFile: join(ctx.dir, 'print-usage.json'),
  });
  await writeFile(script, builtin.stdout + transform);
  return oktailCommand(ctx, script);
}

const CONTENDERS: Record<ContenderName, Contender> = {
  oktail: { name: 'oktail', form: 'tagged', command: (ctx) => oktailCommand(ctx, null) },
  'oktail-lua': {
    name: 'oktail-lua',
    form: 'tagged',
    command: (ctx) => scriptedCommand(ctx, LUA_TRANSFORM),
  },
  'oktail-lua-identity': {
    name: 'oktail-lua-identity',
    form: 'tagged',
    command: (ctx) => scriptedCommand(ctx, LUA_IDENTITY),
  },
  naive: {
    name: 'naive',
    form: 'tagged',
    async command(ctx) {
      const stateDir = join(ctx.dir, 'naive-state');
      await mkdir(stateDir, { recursive: true });
      const config = {
        origin: ctx.emu.origin,
        caFile: ctx.emu.caFile,
        token: ctx.emu.tokens[0]!,
        since: ctx.since,
        out: ctx.out,
        stateDir,
        maxPages: Math.ceil(ctx.events / 1000) + 100,
        deadlineMs: ctx.deadlineMs,
      };
      return { args: [join(BUILT, 'naive-collector.js'), JSON.stringify(config)], env: {} };
    },
  },
  sdk: {
    name: 'sdk',
    form: 'plain',
    async command(ctx) {
      const config = {
        origin: ctx.emu.origin,
        token: ctx.emu.tokens[0]!,
        since: ctx.since,
        out: ctx.out,
        deadlineMs: ctx.deadlineMs,
      };
      return {
        args: [join(BUILT, 'sdk-collector.js'), JSON.stringify(config)],
        env: { NODE_EXTRA_CA_CERTS: ctx.emu.caFile },
      };
    },
  },
};

// ------------------------------------------------------------------------------------------ one run

function countRequests(requests: LoggedRequest[], tokenIndex: number): RequestCounts {
  const mine = requests.filter((r) => r.tokenIndex === tokenIndex);
  return {
    requests: mine.length,
    ok: mine.filter((r) => r.status === 200).length,
    rateLimited: mine.filter((r) => r.status === 429).length,
    events: mine.reduce((n, r) => n + r.events, 0),
  };
}

interface RunOptions {
  round: number;
  events: number;
  since: string;
  served: Buffer[] | null;
  rateLimit?: { maxShare: number; minRemaining: number };
  timeoutMs: number;
  /** False when the caller already reset the emulator (to start another client first). */
  reset?: boolean;
}

async function runContender(
  emu: EmulatorProcess,
  contender: Contender,
  workDir: string,
  options: RunOptions,
): Promise<{ result: RunResult; requests: LoggedRequest[] }> {
  if (options.reset !== false) await emu.reset();
  const dir = join(workDir, `${contender.name}-${options.round}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const ctx: RunContext = {
    emu: emu.ready,
    dir,
    out: join(dir, 'out.ndjson'),
    since: options.since,
    events: options.events,
    rateLimit: options.rateLimit ?? { maxShare: 0.5, minRemaining: 2 },
    deadlineMs: options.timeoutMs - 5_000,
  };
  const { args, env } = await contender.command(ctx);
  const measured: Measured = await measure({
    args,
    env,
    timeoutMs: options.timeoutMs,
    usageFile: join(dir, 'usage.json'),
  });
  const report = await emu.report();
  const output = options.served ? await verifyOutput(ctx.out, options.served, contender.form) : null;
  await rm(dir, { recursive: true, force: true });
  const mine = report.requests.filter((r) => r.tokenIndex === 0);
  const result: RunResult = {
    contender: contender.name,
    round: options.round,
    exitCode: measured.exitCode,
    wallMs: measured.wallMs,
    cpuMs: measured.usage.userMs + measured.usage.systemMs,
    userMs: measured.usage.userMs,
    systemMs: measured.usage.systemMs,
    peakRssKb: measured.usage.vmHwmKb ?? measured.usage.maxRssKb,
    maxRssKb: measured.usage.maxRssKb,
    vmHwmKb: measured.usage.vmHwmKb,
    served: countRequests(report.requests, 0),
    output,
    firstRequestAt: mine[0]?.at ?? null,
    lastRequestAt: mine.at(-1)?.at ?? null,
    ...(measured.exitCode === 0 ? {} : { stderrTail: measured.stderr.slice(-2000) }),
  };
  const rss = (result.peakRssKb / 1024).toFixed(0);
  const events = output?.lines ?? result.served.events;
  console.log(
    `  ${contender.name.padEnd(10)} round ${options.round}: exit ${result.exitCode}, ${events} events, ` +
      `${(result.wallMs / 1000).toFixed(1)} s, CPU ${(result.cpuMs / 1000).toFixed(2)} s, RSS ${rss} MB, ` +
      `${result.served.rateLimited} x 429` +
      (output ? `, ${output.identical} identical` : ''),
  );
  if (result.exitCode !== 0) console.log(`    stderr: ${measured.stderr.slice(-500)}`);
  return { result, requests: report.requests };
}

// ------------------------------------------------------------------------------------------ windows

/** Requests per bucket window (windows are aligned to the server clock, which is ours here). */
function windowUse(requests: LoggedRequest[], windowMs: number): WindowUse[] {
  const ours = requests.filter((r) => r.tokenIndex === 0);
  if (ours.length === 0) return [];
  const first = Math.floor(ours[0]!.at / windowMs);
  const last = Math.floor(ours.at(-1)!.at / windowMs);
  const windows: WindowUse[] = [];
  for (let w = first; w <= last; w++) {
    windows.push({ startMs: w * windowMs - ours[0]!.at, ours: 0, others: 0, rateLimited: 0, events: 0 });
  }
  for (const r of requests) {
    const w = Math.floor(r.at / windowMs) - first;
    const slot = windows[w];
    if (slot === undefined) continue;
    if (r.status === 429) slot.rateLimited++;
    else if (r.status === 200 && r.tokenIndex === 0) {
      slot.ours++;
      slot.events += r.events;
    } else if (r.status === 200) slot.others++;
  }
  return windows;
}

// ------------------------------------------------------------------------------------------ scenarios

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

interface Sizes {
  throughputEvents: number;
  rounds: number;
  limitedEvents: number;
  sharedEvents: number;
  millionEvents: number;
  millionPool: number;
  sinkEvents: number;
  sinkRounds: number;
  /** The sinks the sinks scenario runs; all of them unless --sinks names some. */
  sinkNames?: readonly (typeof SINKS)[number][];
}

const FULL: Sizes = {
  throughputEvents: 200_000,
  rounds: 3,
  limitedEvents: 89_500,
  sharedEvents: 59_500,
  millionEvents: 1_000_000,
  millionPool: 100_000,
  sinkEvents: 200_000,
  sinkRounds: 5,
};
const QUICK: Sizes = {
  throughputEvents: 10_000,
  rounds: 1,
  limitedEvents: 14_500,
  sharedEvents: 9_500,
  millionEvents: 50_000,
  millionPool: 10_000,
  sinkEvents: 10_000,
  sinkRounds: 1,
};

interface Env {
  machine: Machine;
  sizes: Sizes;
  workDir: string;
}

async function withEmulator<T>(
  env: Env,
  name: string,
  config: Omit<EmulatorConfig, 'dir' | 'seed'>,
  body: (emu: EmulatorProcess, since: string) => Promise<T>,
): Promise<T> {
  const dir = join(env.workDir, `${name}-emulator`);
  await mkdir(dir, { recursive: true });
  const since = new Date(Date.now() - 3600_000).toISOString();
  const emu = await EmulatorProcess.start({ ...config, dir, seed: 1 });
  try {
    return await body(emu, since);
  } finally {
    await emu.stop();
  }
}

async function throughput(env: Env): Promise<ThroughputResult> {
  const { sizes } = env;
  const rotated: ContenderName[] = ['oktail', 'naive', 'sdk'];
  const scripted: ContenderName[] = ['oktail-lua', 'oktail-lua-identity'];
  const names: ContenderName[] = [...rotated, ...scripted];
  console.log(`Throughput: ${sizes.throughputEvents} events, no rate limit, ${sizes.rounds} rounds`);
  // Each collector against an empty org first: what it costs to start, load and stop.
  const startup = await withEmulator(env, 'startup', { events: 0, tokens: 1 }, async (emu, since) => {
    const results: RunResult[] = [];
    for (const name of names) {
      const options = { round: 0, events: 0, since, served: null, timeoutMs: 60_000 };
      results.push((await runContender(emu, CONTENDERS[name], env.workDir, options)).result);
    }
    return results;
  });
  const rawFile = join(env.workDir, 'throughput-served.ndjson');
  const config = { events: sizes.throughputEvents, tokens: 1, rawFile };
  const runs = await withEmulator(env, 'throughput', config, async (emu, since) => {
    const served = await readServed(rawFile);
    const results: RunResult[] = [];
    const options = (round: number) => ({
      round,
      events: sizes.throughputEvents,
      since,
      served,
      timeoutMs: 300_000,
    });
    for (let round = 1; round <= sizes.rounds; round++) {
      // A different order every round, so no contender always runs first or after the same one.
      const order = rotated.map((_, i) => rotated[(i + round - 1) % rotated.length]!);
      for (const name of order) {
        results.push((await runContender(emu, CONTENDERS[name], env.workDir, options(round))).result);
      }
    }
    // Per-event Lua is measured on its own, once: it is not what the targets are about.
    for (const name of scripted) {
      results.push((await runContender(emu, CONTENDERS[name], env.workDir, options(1))).result);
    }
    return results;
  });
  await rm(rawFile, { force: true });

  const summary = names.map((name): ContenderSummary => {
    const mine = runs.filter((r) => r.contender === name && r.exitCode === 0);
    const events = mine[0]?.output?.lines ?? 0;
    const start = startup.find((r) => r.contender === name && r.exitCode === 0);
    const cpu = median(mine.map((r) => r.cpuMs)) / 1000;
    return {
      contender: name,
      runs: mine.length,
      events,
      eventsPerSec: median(mine.map((r) => (r.output?.lines ?? 0) / (r.wallMs / 1000))),
      cpuSecPer100k: (cpu / events) * 100_000,
      startupCpuSec: start ? start.cpuMs / 1000 : null,
      marginalCpuSecPer100k: start ? ((cpu - start.cpuMs / 1000) / events) * 100_000 : null,
      peakRssMb: Math.max(...mine.map((r) => r.peakRssKb)) / 1024,
      identicalLines: Math.min(...mine.map((r) => r.output?.identical ?? 0)),
      linesInOrder: Math.min(...mine.map((r) => r.output?.inOrder ?? 0)),
      renamedInterface: Math.max(...mine.map((r) => r.output?.renamedInterface ?? 0)),
      lines: events,
      firstDifference: mine.find((r) => r.output?.firstDifference)?.output?.firstDifference ?? null,
    };
  });
  // Ratios are taken round by round, each contender against the baseline of its own round, and the
  // median of those is reported: the machine may be shared, and a busy minute then weighs on both.
  const naive = summary.find((s) => s.contender === 'naive');
  const startupOf = (name: ContenderName) =>
    (startup.find((r) => r.contender === name && r.exitCode === 0)?.cpuMs ?? NaN) / 1000;
  if (naive) {
    for (const s of summary) {
      const pairs: { cpu: number; marginal: number; rate: number }[] = [];
      for (const mine of runs.filter((r) => r.contender === s.contender && r.exitCode === 0)) {
        const base =
          runs.find((r) => r.contender === 'naive' && r.round === mine.round && r.exitCode === 0) ??
          runs.find((r) => r.contender === 'naive' && r.exitCode === 0);
        if (!base) continue;
        pairs.push({
          cpu: mine.cpuMs / base.cpuMs,
          marginal: (mine.cpuMs / 1000 - startupOf(s.contender)) / (base.cpuMs / 1000 - startupOf('naive')),
          rate: base.wallMs / mine.wallMs,
        });
      }
      s.perRoundCpuVsNaive = pairs.map((p) => Math.round(p.cpu * 1000) / 1000);
      s.cpuVsNaive = median(pairs.map((p) => p.cpu));
      const marginal = pairs.map((p) => p.marginal).filter((x) => Number.isFinite(x));
      if (marginal.length > 0) s.marginalCpuVsNaive = median(marginal);
      s.eventsPerSecVsNaive = median(pairs.map((p) => p.rate));
      s.rssVsNaive = s.peakRssMb / naive.peakRssMb;
    }
  }
  return {
    scenario: 'throughput',
    machine: env.machine,
    events: sizes.throughputEvents,
    rounds: sizes.rounds,
    startup,
    runs,
    summary,
  };
}

const LIMIT = 60;
const WINDOW_MS = 10_000;
const SHARE = 0.5;
const MIN_REMAINING = 2;

function burstMinimum(firstAt: number, requests: number, perWindow: number): number {
  const windows = Math.ceil(requests / perWindow);
  if (windows <= 1) return 0;
  const leftInFirst = (Math.floor(firstAt / WINDOW_MS) + 1) * WINDOW_MS - firstAt;
  return leftInFirst + (windows - 2) * WINDOW_MS;
}

function analyseLimited(
  result: RunResult,
  requests: LoggedRequest[],
  allowedPerWindow: number,
  pages: number,
): LimitedRun {
  const windows = windowUse(requests, WINDOW_MS);
  const full = windows.slice(1, -1);
  const fullEvents = full.reduce((n, w) => n + w.events, 0);
  const perMin = 60_000 / WINDOW_MS;
  const eventsPerMinFull = full.length > 0 ? (fullEvents / full.length) * perMin : null;
  const allowedEventsPerMin = allowedPerWindow * perMin * 1000;
  return {
    run: result,
    windows,
    allowedPerWindow,
    fullWindows: full.length,
    eventsPerMinFull,
    allowedEventsPerMin,
    ceilingRatio: eventsPerMinFull === null ? null : eventsPerMinFull / allowedEventsPerMin,
    eventsPerRequest: result.served.events / Math.max(1, result.served.requests),
    drainMs:
      result.firstRequestAt === null || result.lastRequestAt === null
        ? null
        : result.lastRequestAt - result.firstRequestAt,
    theoreticalDrainMs: burstMinimum(result.firstRequestAt ?? 0, pages, allowedPerWindow),
    steadyDrainMs: ((pages - 1) * WINDOW_MS) / allowedPerWindow,
  };
}

function logLimited(r: LimitedRun): void {
  const pct = (n: number | null) => (n === null ? 'n/a' : `${(n * 100).toFixed(1)} %`);
  console.log(
    `    per window: ${r.windows.map((w) => w.ours).join(' ')} (allowed ${r.allowedPerWindow}); ` +
      `full windows at ${pct(r.ceilingRatio)} of allowed x 1000 events; drain ${((r.drainMs ?? NaN) / 1000).toFixed(1)} s ` +
      `vs ${(r.theoreticalDrainMs / 1000).toFixed(1)} s theoretical minimum (${(r.steadyDrainMs / 1000).toFixed(1)} s at the steady rate)`,
  );
}

async function rateLimited(env: Env): Promise<LimitedResult> {
  const events = env.sizes.limitedEvents;
  const pages = Math.ceil(events / 1000);
  console.log(`Rate-limited backfill: ${events} events, limit ${LIMIT} per ${WINDOW_MS / 1000} s, alone`);
  const config = { events, tokens: 1, rateLimit: { limit: LIMIT, windowMs: WINDOW_MS } };
  const runs = await withEmulator(env, 'rate-limited', config, async (emu, since) => {
    const out: LimitedRun[] = [];
    for (const name of ['oktail', 'naive'] as const) {
      const options = {
        round: 1,
        events,
        since,
        served: null,
        rateLimit: { maxShare: SHARE, minRemaining: MIN_REMAINING },
        timeoutMs: 300_000,
      };
      const { result, requests } = await runContender(emu, CONTENDERS[name], env.workDir, options);
      const allowed = name === 'oktail' ? Math.floor(LIMIT * SHARE) : LIMIT;
      const analysed = analyseLimited(result, requests, allowed, pages);
      logLimited(analysed);
      out.push(analysed);
    }
    return out;
  });
  return {
    scenario: 'rate-limited',
    machine: env.machine,
    limit: LIMIT,
    windowMs: WINDOW_MS,
    maxShare: SHARE,
    minRemaining: MIN_REMAINING,
    events,
    otherPerWindow: null,
    runs,
  };
}

async function sharedBucket(env: Env): Promise<LimitedResult> {
  const events = env.sizes.sharedEvents;
  const pages = Math.ceil(events / 1000);
  const otherPerWindow = LIMIT / 2;
  console.log(
    `Shared bucket: ${events} events, limit ${LIMIT} per ${WINDOW_MS / 1000} s, another client takes ${otherPerWindow}`,
  );
  const config = { events, tokens: 2, rateLimit: { limit: LIMIT, windowMs: WINDOW_MS } };
  const runs = await withEmulator(env, 'shared-bucket', config, async (emu, since) => {
    const out: LimitedRun[] = [];
    for (const name of ['oktail', 'naive'] as const) {
      await emu.reset();
      const otherConfig: OtherClientConfig = {
        origin: emu.ready.origin,
        caFile: emu.ready.caFile,
        token: emu.ready.tokens[1]!,
        since,
        intervalMs: WINDOW_MS / otherPerWindow,
        maxMs: 300_000,
      };
      const other = startHelper([join(BUILT, 'other-client.js'), JSON.stringify(otherConfig)]);
      // Let the other client settle into its pace before the collector starts.
      await new Promise((r) => setTimeout(r, 2_000));
      const options = {
        round: 1,
        events,
        since,
        served: null,
        rateLimit: { maxShare: SHARE, minRemaining: MIN_REMAINING },
        timeoutMs: 300_000,
        reset: false,
      };
      const { result, requests } = await runContender(emu, CONTENDERS[name], env.workDir, options);
      other.child.kill('SIGTERM');
      const otherReport = JSON.parse((await other.output).trim() || '{}') as OtherClientReport;
      const allowed = name === 'oktail' ? LIMIT - otherPerWindow - MIN_REMAINING : LIMIT - otherPerWindow;
      const analysed = analyseLimited(result, requests, allowed, pages);
      analysed.other = {
        ...otherReport,
        rateLimitedSeenByEmulator: requests.filter((r) => r.tokenIndex === 1 && r.status === 429).length,
      };
      logLimited(analysed);
      console.log(
        `    other client: ${otherReport.requests} requests, ${analysed.other.rateLimitedSeenByEmulator} x 429 during the run`,
      );
      out.push(analysed);
    }
    return out;
  });
  return {
    scenario: 'shared-bucket',
    machine: env.machine,
    limit: LIMIT,
    windowMs: WINDOW_MS,
    maxShare: SHARE,
    minRemaining: MIN_REMAINING,
    events,
    otherPerWindow,
    runs,
  };
}

async function million(env: Env): Promise<MillionResult> {
  const { millionEvents: events, millionPool: pool } = env.sizes;
  console.log(`Peak RSS while backfilling ${events} events (a pool of ${pool} served repeatedly)`);
  const rawFile = join(env.workDir, 'million-served.ndjson');
  const config = { events, pool, tokens: 1, rawFile };
  const run = await withEmulator(env, 'rss-1m', config, async (emu, since) => {
    const served = await readServed(rawFile);
    const options = { round: 1, events, since, served, timeoutMs: 600_000 };
    return (await runContender(emu, CONTENDERS.oktail, env.workDir, options)).result;
  });
  await rm(rawFile, { force: true });
  return { scenario: 'rss-1m', machine: env.machine, events, pool, run };
}

const SINKS = ['file', ...NETWORK_SINKS] as const;

/**
 * The real CLI with one sink per run, the file sink beside every network sink, each destination in a
 * process of its own (or the real server's), so the CPU and RSS measured are the oktail process's alone.
 */
async function sinks(env: Env, command: string): Promise<SinksResult> {
  const { sinkEvents: events, sinkRounds: rounds } = env.sizes;
  console.log(
    `Sinks: ${events} events into each sink's destination, ${rounds} round${rounds === 1 ? '' : 's'}`,
  );
  const rawFile = join(env.workDir, 'sinks-served.ndjson');
  const runs = await withEmulator(env, 'sinks', { events, tokens: 1, rawFile }, async (emu, since) => {
    const served = await readServed(rawFile);
    const out: SinkRun[] = [];
    const names = env.sizes.sinkNames ?? SINKS;
    for (let round = 1; round <= rounds; round++) {
      const order = names.map((_, i) => names[(i + round - 1) % names.length]!);
      for (const sink of order)
        out.push(await runSink(env, emu, sink, round, events, since, served, rawFile));
    }
    return out;
  });
  await rm(rawFile, { force: true });
  for (const r of runs) {
    const file = runs.find((f) => f.sink === 'file' && f.round === r.round && f.exitCode === 0);
    if (file && r.exitCode === 0) r.cpuVsFile = r.cpuMs / file.cpuMs;
  }
  const summary = SINKS.map((sink): SinkSummary => {
    const mine = runs.filter((r) => r.sink === sink && r.exitCode === 0);
    const ratios = mine.map((r) => r.cpuVsFile).filter((x): x is number => x !== undefined);
    const alone = mine.map((r) => r.serverAlone).filter((a) => a !== undefined);
    return {
      sink,
      runs: mine.length,
      eventsPerSec: mine.length ? median(mine.map((r) => r.eventsPerSec)) : 0,
      cpuSecPer100k: mine.length ? (median(mine.map((r) => r.cpuMs)) / 1000 / events) * 100_000 : NaN,
      cpuVsFile: ratios.length ? median(ratios) : NaN,
      perRoundCpuVsFile: ratios.map((x) => Math.round(x * 1000) / 1000),
      destinationCpuSecPer100k: medianPer100k(
        mine.map((r) => r.destinationCpuMs),
        events,
      ),
      oktaEmulatorCpuSecPer100k: medianPer100k(
        mine.map((r) => r.oktaEmulatorCpuMs),
        events,
      ),
      ...(alone.length > 0
        ? {
            serverAloneEventsPerSec: median(alone.map((a) => a.eventsPerSec)),
            serverAloneCpuSecPer100k: medianPer100k(
              alone.map((a) => a.serverCpuMs),
              events,
            ),
          }
        : {}),
      peakRssMb: mine.length ? Math.max(...mine.map((r) => r.peakRssKb)) / 1024 : NaN,
      complete:
        mine.length === rounds &&
        runs
          .filter((r) => r.sink === sink)
          .every((r) => r.exitCode === 0 && r.missing === 0 && r.unknown === 0 && r.distinct === events),
      duplicates: Math.max(0, ...runs.filter((r) => r.sink === sink).map((r) => r.held - r.distinct)),
    };
  });
  return { scenario: 'sinks', machine: env.machine, events, rounds, command, runs, summary };
}

/** Median CPU seconds per 100k events of the defined values; NaN when there are none. */
function medianPer100k(cpuMs: readonly (number | undefined)[], events: number): number {
  const known = cpuMs.filter((x): x is number => x !== undefined);
  return known.length ? (median(known) / 1000 / events) * 100_000 : NaN;
}

async function runSink(
  env: Env,
  emu: EmulatorProcess,
  sink: (typeof SINKS)[number],
  round: number,
  events: number,
  since: string,
  served: Buffer[],
  rawFile: string,
): Promise<SinkRun> {
  await emu.reset();
  const dir = join(env.workDir, `sink-${sink}-${round}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const ctx: RunContext = {
    emu: emu.ready,
    dir,
    out: join(dir, 'out.ndjson'),
    since,
    events,
    rateLimit: { maxShare: 0.5, minRemaining: 2 },
    deadlineMs: 0,
  };
  const destination = sink === 'file' ? null : await DestinationProcess.start({ type: sink, dir });
  try {
    const { args, env: childEnv } = await oktailCommand(ctx, null, destination?.ready.sinkLines);
    const destinationCpuBefore = await destination?.cpuMs();
    const emulatorCpuBefore = emu.cpuMs();
    const measured = await measure({
      args,
      env: { ...childEnv, ...destination?.ready.env },
      timeoutMs: 600_000,
      usageFile: join(dir, 'usage.json'),
    });
    const oktaEmulatorCpuMs = emu.cpuMs() - emulatorCpuBefore;
    // Read as soon as the CLI exited: the count's own reads (SELECT, GetObject) would add to it.
    const destinationCpuMs =
      destination && destinationCpuBefore !== undefined
        ? (await destination.cpuMs()) - destinationCpuBefore
        : undefined;
    let counted: Pick<SinkRun, 'held' | 'distinct' | 'missing' | 'unknown' | 'identical'>;
    let serverAlone: SinkRun['serverAlone'];
    if (destination) {
      counted = await destination.count(rawFile, events);
      if (sink === 'postgres') {
        const alone = await destination.alone(rawFile);
        serverAlone = {
          eventsPerSec: alone.eventsPerSec,
          wallMs: alone.wallMs,
          serverCpuMs: alone.serverCpuMs,
        };
      }
    } else {
      const v = await verifyOutput(ctx.out, served, 'tagged');
      // Output line i holds served event i: in order and byte-identical means every event once.
      counted = {
        held: v.lines,
        distinct: v.inOrder,
        missing: events - v.inOrder,
        unknown: 0,
        identical: v.identical,
      };
    }
    const run: SinkRun = {
      sink,
      round,
      exitCode: measured.exitCode,
      wallMs: measured.wallMs,
      cpuMs: measured.usage.userMs + measured.usage.systemMs,
      peakRssKb: measured.usage.vmHwmKb ?? measured.usage.maxRssKb,
      eventsPerSec: counted.distinct / (measured.wallMs / 1000),
      ...counted,
      oktaEmulatorCpuMs,
      ...(destinationCpuMs === undefined ? {} : { destinationCpuMs }),
      ...(serverAlone ? { serverAlone } : {}),
      ...(measured.exitCode === 0 ? {} : { stderrTail: measured.stderr.slice(-2000) }),
    };
    console.log(
      `  ${sink.padEnd(13)} round ${round}: exit ${run.exitCode}, held ${run.held} (${run.distinct} distinct, ` +
        `${run.missing} missing), ${(run.wallMs / 1000).toFixed(1)} s, ${Math.round(run.eventsPerSec)} events/s, ` +
        `CPU ${(run.cpuMs / 1000).toFixed(2)} s, RSS ${(run.peakRssKb / 1024).toFixed(0)} MB` +
        (destinationCpuMs === undefined
          ? ''
          : `, destination CPU ${(destinationCpuMs / 1000).toFixed(2)} s`) +
        `, Okta emulator CPU ${(oktaEmulatorCpuMs / 1000).toFixed(2)} s`,
    );
    if (serverAlone) {
      console.log(
        `  ${''.padEnd(13)} the server alone: ${Math.round(serverAlone.eventsPerSec)} events/s, ` +
          `${(serverAlone.wallMs / 1000).toFixed(1)} s, server CPU ${(serverAlone.serverCpuMs / 1000).toFixed(2)} s`,
      );
    }
    if (run.exitCode !== 0) console.log(`    stderr: ${measured.stderr.slice(-500)}`);
    return run;
  } finally {
    await destination?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------ main

const SCENARIOS = [
  'startup',
  'throughput',
  'rate-limited',
  'shared-bucket',
  'rss-1m',
  'sinks',
  'scale',
] as const;
type Scenario = (typeof SCENARIOS)[number];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      events: { type: 'string' },
      rounds: { type: 'string' },
      'sink-events': { type: 'string' },
      'sink-rounds': { type: 'string' },
      sinks: { type: 'string' },
      'baseline-build': { type: 'string' },
    },
    strict: true,
  });
  const only = (values.only?.split(',') ?? [...SCENARIOS]) as Scenario[];
  for (const s of only) if (!SCENARIOS.includes(s)) throw new Error(`Unknown scenario ${s}`);
  const quick = values.quick === true;
  const workDir = join(ROOT, 'bench', 'tmp', 'work');
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  const sizes = { ...(quick ? QUICK : FULL) };
  if (values.events !== undefined) sizes.throughputEvents = Number(values.events);
  if (values.rounds !== undefined) sizes.rounds = Number(values.rounds);
  if (values['sink-events'] !== undefined) sizes.sinkEvents = Number(values['sink-events']);
  if (values['sink-rounds'] !== undefined) sizes.sinkRounds = Number(values['sink-rounds']);
  if (values.sinks !== undefined) {
    const chosen = values.sinks.split(',');
    for (const s of chosen)
      if (!(SINKS as readonly string[]).includes(s)) throw new Error(`Unknown sink ${s}`);
    // The ratios are to the file sink's run of the same round, so it always runs.
    sizes.sinkNames = SINKS.filter((s) => s === 'file' || chosen.includes(s));
  }
  // Results of other sizes than the documented ones are for trying things out, not for the record. A run
  // of some scenarios (--only) at their documented sizes replaces those scenarios' results only.
  const record =
    !quick &&
    values.events === undefined &&
    values.rounds === undefined &&
    values['sink-events'] === undefined &&
    values['sink-rounds'] === undefined &&
    values.sinks === undefined;
  const command = [
    'npm run bench',
    ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : []),
  ].join(' ');
  const env: Env = { machine: await machine(), sizes, workDir };
  console.log(`${env.machine.cpu}, ${env.machine.cores} cores, Node.js ${env.machine.node}`);
  const started = performance.now();

  const results: Partial<{
    throughput: ThroughputResult;
    'rate-limited': LimitedResult;
    'shared-bucket': LimitedResult;
    'rss-1m': MillionResult;
    startup: StartupResult;
    sinks: SinksResult;
    scale: ScaleResult;
  }> = {};
  if (only.includes('startup')) {
    results.startup = await startup({
      machine: env.machine,
      root: ROOT,
      workDir,
      baselineBuild: values['baseline-build'] ?? null,
      runs: quick ? 3 : undefined,
    });
    if (results.startup.baseline === null) {
      const previous = await readPrevious<StartupResult>(join(ROOT, 'bench', 'results', 'startup.json'));
      const recorded = previous?.baseline
        ? {
            build: previous.baseline.build,
            medianMs: previous.baseline.medianMs,
            note: `measured ${previous.machine.date} beside that run's build`,
          }
        : previous?.recordedBaseline;
      if (recorded) results.startup.recordedBaseline = recorded;
    }
  }
  if (only.includes('throughput')) results.throughput = await throughput(env);
  if (only.includes('rate-limited')) results['rate-limited'] = await rateLimited(env);
  if (only.includes('shared-bucket')) results['shared-bucket'] = await sharedBucket(env);
  if (only.includes('rss-1m')) results['rss-1m'] = await million(env);
  if (only.includes('sinks')) results.sinks = await sinks(env, command);
  if (only.includes('scale'))
    results.scale = await scale({ machine: env.machine, root: ROOT, workDir, quick });
  env.machine.loadAfter = loadavg().map((n) => Math.round(n * 100) / 100);
  const minutes = ((performance.now() - started) / 60_000).toFixed(1);
  console.log(`Done in ${minutes} min.`);

  // A trial run's results go under bench/tmp (ignored by git), where they cannot pass for the record.
  const dir = record ? join(ROOT, 'bench', 'results') : join(ROOT, 'bench', 'tmp', 'trial-results');
  const report = record ? join(ROOT, 'docs', 'performance.md') : join(ROOT, 'bench', 'tmp', 'performance.md');
  await mkdir(dir, { recursive: true });
  for (const [name, result] of Object.entries(results)) {
    await writeFile(join(dir, `${name}.json`), JSON.stringify(result, null, 2) + '\n');
  }
  await writeReport(report, dir);
  console.log(`Wrote ${dir}/*.json and ${report}${record ? '' : ' (a trial: not the documented sizes)'}.`);
  await rm(workDir, { recursive: true, force: true });
}

async function readPrevious<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exitCode = 1;
});
