/*
 * The machine a benchmark ran on, and docs/performance.md written from bench/results/*.json.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import type {
  ContenderName,
  LimitedResult,
  MillionResult,
  SinkSummary,
  SinksResult,
  ThroughputResult,
  WindowUse,
  Machine,
} from './results.js';
import type { StartupResult } from './startup.js';
import { scaleSection, type ScaleResult } from './scale.js';

export async function machine(): Promise<Machine> {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const info = await readFile('/proc/cpuinfo', 'utf8');
    cpu = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? cpu;
  } catch {
    // Not Linux: the os module's name will do.
  }
  return {
    cpu,
    cores: cpus().length,
    memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    kernel: release(),
    date: new Date().toISOString(),
    loadBefore: loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

const LABELS: Record<ContenderName, string> = {
  oktail: 'oktail (file sink)',
  'oktail-lua': 'oktail + Lua `transform` per event',
  'oktail-lua-identity': 'oktail + Lua `transform` returning each event unchanged',
  naive: 'naive baseline (undici + JSON.parse + JSON.stringify)',
  sdk: 'Okta Node SDK 8 (`listLogEvents` + `each`)',
};

const fixed = (n: number | null | undefined, digits = 2): string =>
  n === null || n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(digits);
const ratio = (n: number | null | undefined): string =>
  n === null || n === undefined || !Number.isFinite(n) ? 'n/a' : `${n.toFixed(2)}x`;
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const yes = (ok: boolean): string => (ok ? 'met' : '**not met**');

async function load<T>(dir: string, name: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(join(dir, `${name}.json`), 'utf8')) as T;
  } catch {
    return null;
  }
}

function machineLine(m: { machine: Machine }): string {
  const x = m.machine;
  return (
    `${x.cpu}, ${x.cores} cores, ${x.memoryGb} GB RAM, Linux ${x.kernel}, Node.js ${x.node}; ` +
    `${x.date.slice(0, 16).replace('T', ' ')} UTC; load average before/after ${x.loadBefore.join(' ')} / ` +
    `${x.loadAfter?.join(' ') ?? 'n/a'}`
  );
}

function identity(s: ThroughputResult['summary'][number]): string {
  if (s.lines === 0) return 'n/a';
  const order = `events complete and in order: ${s.linesInOrder === s.lines ? 'yes' : 'no'}`;
  // The script adds a field to every event, so no line can be the served bytes.
  if (s.contender === 'oktail-lua') return `n/a: the script changes every event (${order})`;
  const all = s.identicalLines === s.lines;
  const text = all ? 'yes, every line' : `no: ${int(s.identicalLines)} of ${int(s.lines)} lines`;
  const renamed = s.renamedInterface > 0 ? `, \`_interface\` in ${int(s.renamedInterface)} lines` : '';
  return `${text} (${order}${renamed})`;
}

export function throughputTable(t: ThroughputResult): string[] {
  const rows = [
    '| collector | events/s | vs naive | CPU s per 100k events | CPU per event vs naive | same, less startup, vs naive | peak RSS | vs naive | output byte-identical to what Okta sent |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const s of t.summary) {
    rows.push(
      `| ${LABELS[s.contender]} | ${int(s.eventsPerSec)} | ${ratio(s.eventsPerSecVsNaive)} | ` +
        `${fixed(s.cpuSecPer100k)} | ${ratio(s.cpuVsNaive)} | ${ratio(s.marginalCpuVsNaive)} | ` +
        `${fixed(s.peakRssMb, 0)} MB | ${ratio(s.rssVsNaive)} | ${identity(s)} |`,
    );
  }
  return rows;
}

function perWindow(windows: WindowUse[], pick: (w: WindowUse) => number): string {
  return windows.map(pick).join(', ');
}

function limitedTable(r: LimitedResult): string[] {
  const shared = r.scenario === 'shared-bucket';
  const rows = shared
    ? [
        "| collector | 429s to it | 429s to the other client | its requests per window | the other client's | left in the bucket at the end of each full window | time to drain (first to last request) | at its nominal allowance | events per request |",
        '|---|---:|---:|---|---|---|---:|---:|---:|',
      ]
    : [
        '| collector | 429s | requests per window | events/min in full windows vs allowed x 1000 | time to drain (first to last request) | at the allowed rate | earliest within the budget | events per request |',
        '|---|---:|---|---:|---:|---:|---:|---:|',
      ];
  for (const run of r.runs) {
    const budget = run.run.contender === 'naive' ? 'no budget' : `allowed ${run.allowedPerWindow}`;
    const used = `${perWindow(run.windows, (w) => w.ours)} (${budget})`;
    const drain = run.drainMs === null ? 'n/a' : `${fixed(run.drainMs / 1000, 1)} s`;
    const steady = run.run.contender === 'naive' ? 'n/a' : `${fixed(run.steadyDrainMs / 1000, 1)} s`;
    if (shared) {
      const full = run.windows.slice(1, -1);
      const left = full.length === 0 ? 'n/a' : perWindow(full, (w) => r.limit - w.ours - w.others);
      rows.push(
        `| ${LABELS[run.run.contender]} | ${run.run.served.rateLimited} | ${run.other?.rateLimitedSeenByEmulator ?? 'n/a'} | ` +
          `${used} | ${perWindow(run.windows, (w) => w.others)} | ${left} | ${drain} | ${steady} | ${fixed(run.eventsPerRequest, 1)} |`,
      );
    } else {
      const ceiling = run.ceilingRatio === null ? 'n/a' : `${(run.ceilingRatio * 100).toFixed(1)} %`;
      const earliest = run.run.contender === 'naive' ? 'n/a' : `${fixed(run.theoreticalDrainMs / 1000, 1)} s`;
      rows.push(
        `| ${LABELS[run.run.contender]} | ${run.run.served.rateLimited} | ${used} | ${ceiling} | ${drain} | ${steady} | ` +
          `${earliest} | ${fixed(run.eventsPerRequest, 1)} |`,
      );
    }
  }
  return rows;
}

interface Targets {
  rows: string[];
}

function targets(
  t: ThroughputResult | null,
  limited: LimitedResult | null,
  shared: LimitedResult | null,
  m: MillionResult | null,
): Targets {
  const rows = ['| target | measured | |', '|---|---|---|'];
  const oktail = t?.summary.find((s) => s.contender === 'oktail');
  const sdk = t?.summary.find((s) => s.contender === 'sdk');
  if (oktail?.cpuVsNaive !== undefined) {
    const rounds = oktail.perRoundCpuVsNaive?.map((x) => x.toFixed(2)).join(', ') ?? 'n/a';
    rows.push(
      `| collector CPU per event at most 0.5x the naive baseline | ${ratio(oktail.cpuVsNaive)} whole process ` +
        `(rounds: ${rounds}); ${ratio(oktail.marginalCpuVsNaive)} less startup | ${yes(oktail.cpuVsNaive <= 0.5)} |`,
    );
  }
  if (m) {
    const mb = m.run.peakRssKb / 1024;
    rows.push(
      `| peak RSS below 150 MB backfilling ${int(m.events)} events | ${fixed(mb, 0)} MB | ${yes(mb < 150 && m.run.exitCode === 0)} |`,
    );
  }
  const alone = limited?.runs.find((r) => r.run.contender === 'oktail');
  if (alone) {
    const ok = alone.ceilingRatio !== null && Math.abs(alone.ceilingRatio - 1) <= 0.05;
    rows.push(
      `| backfill within 5% of allowed requests per minute x 1000 | ${alone.ceilingRatio === null ? 'n/a' : (alone.ceilingRatio * 100).toFixed(1) + ' %'} | ${yes(ok)} |`,
    );
    rows.push(
      `| zero 429s when alone | ${alone.run.served.rateLimited} | ${yes(alone.run.served.rateLimited === 0)} |`,
    );
  }
  const together = shared?.runs.find((r) => r.run.contender === 'oktail');
  if (together) {
    const caused = together.other?.rateLimitedSeenByEmulator ?? NaN;
    rows.push(
      `| no 429s for another client sharing the bucket | ${caused} to the other client, ${together.run.served.rateLimited} to oktail | ${yes(caused === 0 && together.run.served.rateLimited === 0)} |`,
    );
  }
  if (oktail && sdk) {
    const ahead = oktail.eventsPerSec > sdk.eventsPerSec && oktail.cpuSecPer100k < sdk.cpuSecPer100k;
    rows.push(
      `| ahead of the SDK-based collector | ${ratio(oktail.eventsPerSec / sdk.eventsPerSec)} the events/s, ` +
        `${ratio(oktail.cpuSecPer100k / sdk.cpuSecPer100k)} the CPU per event, ${ratio(oktail.peakRssMb / sdk.peakRssMb)} the RSS | ${yes(ahead)} |`,
    );
  }
  return { rows };
}

/** docs/performance.md from whatever results exist. */
export async function writeReport(path: string, resultsDir: string): Promise<void> {
  const t = await load<ThroughputResult>(resultsDir, 'throughput');
  const limited = await load<LimitedResult>(resultsDir, 'rate-limited');
  const shared = await load<LimitedResult>(resultsDir, 'shared-bucket');
  const m = await load<MillionResult>(resultsDir, 'rss-1m');
  const st = await load<StartupResult>(resultsDir, 'startup');
  const sk = await load<SinksResult>(resultsDir, 'sinks');
  const sc = await load<ScaleResult>(resultsDir, 'scale');
  const any = t ?? limited ?? shared ?? m ?? sk;
  const out: string[] = [
    '# Performance',
    '',
    'Written by `npm run bench` (bench/run.ts) from `bench/results/*.json`; do not edit by hand.',
    '',
    'Every collector runs as its own process against the project Okta emulator, itself a separate process,',
    'over HTTPS on loopback. Each process reports its own CPU time (`process.cpuUsage()`, user + system) and',
    'peak RSS (`VmHWM` from /proc/self/status, which covers worker threads too) at exit, so neither the',
    "harness nor the emulator is counted. (getrusage's maxRSS is not used: on Linux a child inherits its",
    "parent's size at fork, which would charge each collector with the harness's memory.) Every output line is",
    "compared with the bytes the emulator served (oktail's and the baseline's minus the",
    '`"_okta_event_type":"systemLog"` tag).',
    '',
  ];
  if (any) out.push(`Machine: ${machineLine(any)}.`, '');
  const tg = targets(t, limited, shared, m);
  out.push('## Targets', '', ...tg.rows, '');

  if (t) {
    out.push(
      `## Throughput without a rate limit`,
      '',
      `${int(t.events)} events (about 1.9 KB each, 1000 per page), ${t.rounds} round${t.rounds === 1 ? '' : 's'} run in rotating order; the two oktail + Lua`,
      'lines are one run each after them. Absolute figures are medians over the rounds; ratios are the median of',
      "each round's ratio to that round's baseline run. CPU is the whole process, start to exit; \"less",
      'startup" subtracts the same collector run against an empty org (start, load config, one request,',
      'exit).',
      '',
      ...throughputTable(t),
      '',
      'Startup (empty org, CPU s / peak RSS): ' +
        t.startup
          .map((s) => `${s.contender} ${fixed(s.cpuMs / 1000)} s / ${fixed(s.peakRssKb / 1024, 0)} MB`)
          .join(', ') +
        '.',
      '',
    );
    const diffs = t.summary.filter((s) => s.firstDifference);
    if (diffs.length > 0) {
      out.push('First difference from the served bytes:', '');
      for (const s of diffs) {
        const d = s.firstDifference!;
        out.push(
          `- ${LABELS[s.contender]}, line ${d.line}: served \`${d.served.replace(/`/g, "'")}\`, written \`${d.written.replace(/`/g, "'")}\``,
        );
      }
      out.push('');
    }
  }
  if (limited) {
    out.push(
      '## Rate-limited backfill',
      '',
      `Okta's 60 requests per minute for /api/v1/logs, scaled down to ${limited.limit} per ${limited.windowMs / 1000} s; ` +
        `${int(limited.events)} events; oktail with \`max_share: ${limited.maxShare}\`, \`min_remaining: ${limited.minRemaining}\`, ` +
        'alone in the org. The baseline has no budget: it may use the whole bucket and waits for the reset on a 429.',
      'Windows are listed from the one the collector started in to the one it finished in; a full window is',
      'one it used from start to end. "At the allowed rate" is the time',
      'the requests take one slot (window / allowed) apart; "earliest within the budget" sends every allowed',
      'request the moment its window opens, starting where the collector started (no client can do better,',
      "and none that spreads its requests gets close). oktail spends its first window's share in what is left",
      'of that window, which is why it can finish before the steady-rate time.',
      '',
      ...limitedTable(limited),
      '',
    );
  }
  if (shared) {
    out.push(
      '## Shared bucket',
      '',
      `The same limit; another client of the org (its own token) spends ${shared.otherPerWindow} requests per window at a steady pace ` +
        `while the collector backfills ${int(shared.events)} events. oktail's nominal allowance is what the bucket holds beyond the other ` +
        `client and \`min_remaining\`: ${shared.limit} - ${shared.otherPerWindow} - ${shared.minRemaining}. oktail keeps \`min_remaining\` ` +
        "and room for what the other client is expected to spend before the reset, at the pace it kept between oktail's " +
        'responses (the first window is the exception: nothing of that pace is known yet). ' +
        'Windows are listed from the one the collector started in to the one it finished in.',
      '',
      ...limitedTable(shared),
      '',
    );
  }
  if (st) out.push(...startupSection(st));
  if (st || m || t) out.push(...leanerSection(st, m, t));
  if (m) {
    const r = m.run;
    out.push(
      '## Memory while backfilling a million events',
      '',
      `oktail, file sink, ${int(m.events)} events (the emulator serves a pool of ${int(m.pool)} distinct events repeatedly): ` +
        `peak RSS ${fixed(r.peakRssKb / 1024, 0)} MB, ` +
        `${fixed(r.wallMs / 1000, 1)} s, ${int((r.output?.lines ?? 0) / (r.wallMs / 1000))} events/s, CPU ${fixed(r.cpuMs / 1000, 1)} s, ` +
        `byte-identical lines ${int(r.output?.identical ?? 0)} of ${int(r.output?.lines ?? 0)}.`,
      '',
      'Where the memory goes (measured with `process.memoryUsage()` sampled every 50–100 ms and /proc/self/status): ' +
        "a `run` that collects nothing holds about 77 MB, 45 MB of it the node binary's mapped code and data. Each " +
        "1000-event page used to leave about 6 MB of dead buffers outside the JavaScript heap: the TLS layer's " +
        '16 KB chunks (2 MB a page), the body assembled from them and the NDJSON rendered. The body is now read ' +
        'into one buffer per source, reused from page to page (shared memory, so the thread of a script you ' +
        'configure reads it in place), and the NDJSON is rendered into a second reused buffer: only the chunks ' +
        'remain. V8 frees those when it collects its young generation, which start-up had grown to 16 MB a ' +
        'half, so a collection came every 30 pages or so, with up to 60 MB of chunks. bin/oktail.js now keeps ' +
        "the young generation of `run` and `demo` at its initial size (V8's `--semi-space-growth-factor=1`, set from inside the " +
        'process before any module loads: V8 reads it whenever the space would grow); it is then collected every ' +
        'page or two, with no CPU cost that a run could show. The same backfill on 2026-11-29 (load average 2 to ' +
        '13): 172 MB before these changes (CPU 20.9 s), 143–147 MB with the reused buffers alone (CPU 12.4 s: the ' +
        'copies and the collections of dead pages were most of the CPU), 103–107 MB with both (CPU 10.7–13.5 s); runs of this scenario with this build gave 96, 102 and 94 MB (02:50, 03:02 and 03:03 UTC, load average 7 to 10), so the 100 MB goal is met most of the time, not with a margin. ' +
        'Left above the idle 77 MB: the two page buffers (2.9 MB each: the first page sizes them, a larger page ' +
        'grows them by half), the TLS chunks still waiting for a collection (10–20 MB) and what malloc keeps of ' +
        'the freed ones. `--max-semi-space-size=1` at start would take about 2 MB more off; it cannot be set from ' +
        "inside the process. With a per-event `transform`, the script's thread has its young generation capped at " +
        '8 MB, and it reads the page in place instead of receiving a copy. On 2026-11-29 between 08:05 and 08:12 UTC ' +
        'this build peaked at 100 to 103 MB over four runs; with `MALLOC_ARENA_MAX=1` in its environment at 96 MB, ' +
        "at the same CPU: glibc's per-thread arenas hold about 6 MB of it. glibc reads that setting only when the " +
        'process starts, so oktail cannot set it for itself; an operator can. V8 flags set from inside the process ' +
        '(`--no-concurrent-recompilation`) changed nothing measurable (100 MB).',
      '',
      'What still pushed the peak to 100-103 MB (6 runs, 2026-11-29 10:19-10:40 UTC): the memory outside the heap ' +
        '(`process.memoryUsage().arrayBuffers`, sampled every 50 ms) climbed from 6 MB (the two page buffers) to ' +
        "24 MB between the old generation's markings and fell back at each; a run marked it 11 times (counted with " +
        'a `gc` PerformanceObserver). Chunks still referenced at two scavenges are promoted, and their dead ' +
        'buffers wait for the next marking. bin/oktail.js now also sets `--heap-growing-percent=25` for `run` and ' +
        "`demo` (V8 reads it whenever it sets the next marking's limit): the old generation is marked once it grew " +
        "by 25 % (at least 8 MB, V8's minimum step) instead of by a factor V8 picks from its own speed. The same " +
        'backfill then marked 14 times, about 4 ms each, and peaked at 94-97 MB over 6 runs (10:38-10:46 UTC), CPU ' +
        '16.4-21.3 s against 18.7-21.4 s without it. 10 % gave 95-96 MB over 5 runs, 50 % 97 MB twice. Reading the ' +
        "body with a `'data'` listener instead of `for await` cut the scavenges from 571 to 426 a run but not the " +
        'peak (101 and 102 MB), and was not kept.',
      '',
    );
  }
  if (sk) out.push(...sinksSection(sk));
  if (sc) out.push(...scaleSection(sc));
  // Formatted as `npm run lint` expects, so the generated file never fails the check.
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(path)) ?? {};
  await writeFile(path, await prettier.format(out.join('\n'), { ...options, filepath: path }));
}

function startupSection(st: StartupResult): string[] {
  const base = st.baseline ?? st.recordedBaseline ?? null;
  const baseLabel = st.baseline
    ? `baseline build (${st.baseline.build}), same runs`
    : st.recordedBaseline
      ? `baseline (${st.recordedBaseline.note})`
      : null;
  const rows = [
    `| command | median wall time | runs (ms) |${baseLabel ? ` ${baseLabel} |` : ''}`,
    `| --- | ---: | --- |${baseLabel ? ' ---: |' : ''}`,
    ...st.commands.map((c) => {
      const b = base?.medianMs[c.name];
      const cells = [
        `\`${c.name}\``,
        `${fixed(st.current.medianMs[c.name]! / 1000, 2)} s`,
        (st.current.runsMs[c.name] ?? []).join(', '),
      ];
      if (baseLabel) cells.push(b === undefined ? 'n/a' : `${fixed(b / 1000, 2)} s`);
      return `| ${cells.join(' | ')} |`;
    }),
  ];
  return [
    '## Start-up',
    '',
    `Wall time from starting \`node bin/oktail.js\` to its exit, the median of ${st.runs} runs per command on ` +
      `${st.machine.date.slice(0, 16).replace('T', ' ')} UTC (load average before ${st.machine.loadBefore.join(' ')}). ` +
      "The config is the README's (no TLS files); the second `validate` names a Lua script, which it loads and dry-runs " +
      "in the script's own worker thread. bin/oktail.js runs the CLI bundled by esbuild (dist/bundle/, written " +
      'by `npm run build`): `validate` opens a few dozen files instead of about 230, and of zod only the code ' +
      'oktail calls; the commands that do little work never load the HTTP stack, the Lua VM or the logger.' +
      (st.nodeMedianMs === undefined
        ? ''
        : ` \`node -e 0\` alone took ${fixed(st.nodeMedianMs / 1000, 2)} s (median) in the same minutes.`),
    '',
    ...rows,
    '',
  ];
}

/**
 * Issue 8's goals for a leaner runtime, beside the figures of the build before that work (measured on this
 * machine on 2026-11-28/29 with this bench: start-up at 01:09 UTC, load 1.3; the million at 01:41 UTC, load
 * 1.8; the Lua line at 23:51 UTC, load 15).
 */
const LEAN_BEFORE = {
  startupMs: {
    'oktail --help': 230,
    'oktail validate -c FILE': 350,
    'oktail state show -c FILE': 270,
  } as Record<string, number>,
  rssMb: 172,
  luaAddField: 6_107,
  luaAddFieldCpu: 4.23,
};
const STARTUP_GOAL_MS = 300;
const RSS_GOAL_MB = 100;
const LUA_GOAL = 15_000;

function leanerSection(
  st: StartupResult | null,
  m: MillionResult | null,
  t: ThroughputResult | null,
): string[] {
  const rows = ['| goal | before | now | |', '| --- | ---: | ---: | --- |'];
  if (st) {
    for (const name of Object.keys(LEAN_BEFORE.startupMs)) {
      const now = st.current.medianMs[name];
      if (now === undefined) continue;
      // A baseline build run in the same minutes compares fairly; the recorded figure is from a quieter hour.
      const before = st.baseline?.medianMs[name];
      const was =
        before === undefined
          ? `${fixed(LEAN_BEFORE.startupMs[name]! / 1000)} s (01:09 UTC)`
          : `${fixed(before / 1000)} s (same runs); ${fixed(LEAN_BEFORE.startupMs[name]! / 1000)} s (01:09 UTC)`;
      rows.push(
        `| \`${name}\` under ${fixed(STARTUP_GOAL_MS / 1000)} s (median of ${st.runs}) | ` +
          `${was} | ${fixed(now / 1000)} s | ${yes(now < STARTUP_GOAL_MS)} |`,
      );
    }
  }
  if (m) {
    const mb = m.run.peakRssKb / 1024;
    rows.push(
      `| peak RSS backfilling ${int(m.events)} events under ${RSS_GOAL_MB} MB | ${LEAN_BEFORE.rssMb} MB | ` +
        `${fixed(mb, 0)} MB | ${yes(mb < RSS_GOAL_MB)} |`,
    );
  }
  if (t) {
    const lua = (name: ContenderName) => t.summary.find((s) => s.contender === name);
    const add = lua('oktail-lua');
    const same = lua('oktail-lua-identity');
    if (add) {
      rows.push(
        `| Lua \`transform\` adding a field, at least ${int(LUA_GOAL)} events/s | ${int(LEAN_BEFORE.luaAddField)} ` +
          `(${fixed(LEAN_BEFORE.luaAddFieldCpu)} CPU s per 100k) | ${int(add.eventsPerSec)} (${fixed(add.cpuSecPer100k)} CPU s per 100k) | ` +
          `${yes(add.eventsPerSec >= LUA_GOAL)} |`,
      );
    }
    if (same) {
      rows.push(
        `| Lua \`transform\` returning each event, at least ${int(LUA_GOAL)} events/s | not measured | ` +
          `${int(same.eventsPerSec)} (${fixed(same.cpuSecPer100k)} CPU s per 100k) | ${yes(same.eventsPerSec >= LUA_GOAL)} |`,
      );
    }
  }
  const loads = [st, m, t]
    .filter((r) => r !== null)
    .map((r) => `${r.machine.date.slice(11, 16)} UTC ${r.machine.loadBefore.join(' ')}`);
  return [
    '## Leaner runtime goals',
    '',
    'The figures above against the goals of a leaner runtime, beside those of the build before that work, ' +
      'measured on this machine with this bench (start-up on 2026-11-29 01:09 UTC at load average 1.3, the million ' +
      'at 01:41 UTC at 1.8, the Lua line on 2026-11-28 23:51 UTC at 15). The machine is shared: wall times and ' +
      'events/s move with its load (load average when each scenario above started: ' +
      `${[...new Set(loads)].join('; ')}). CPU per event moves less, but moves too: two busy cores share caches.` +
      ' The Lua lines gained most from reading ahead: the source fetches the next page while the current one ' +
      "is delivered, and with a script into the client's second body buffer while the script's thread still " +
      'reads the current page, so a page costs the longer of its fetch and its transform rather than both. ' +
      'Start-up gained from the bundle (dist/bundle/, made by tools/build.mjs): `validate` opened 227 ' +
      'JavaScript files before it, 27 with it.',
    '',
    ...rows,
    '',
  ];
}

const SINK_CPU_GOAL = 1.5;
const SINK_RSS_GOAL_MB = 150;
const POSTGRES_GOAL = 20_000;

function sinksSection(sk: SinksResult): string[] {
  const rows = [
    '| sink | events/s | CPU s per 100k events | CPU vs file sink (per round) | destination CPU s per 100k | peak RSS | destination held every event |',
    '| --- | ---: | ---: | --- | ---: | ---: | --- |',
    ...sk.summary.map(
      (s) =>
        `| ${s.sink} | ${int(s.eventsPerSec)} | ${fixed(s.cpuSecPer100k)} | ${ratio(s.cpuVsFile)} ` +
        `(${s.perRoundCpuVsFile.join(', ')}) | ${Number.isFinite(s.destinationCpuSecPer100k) ? fixed(s.destinationCpuSecPer100k) : '-'} ` +
        `| ${fixed(s.peakRssMb, 0)} MB | ` +
        `${s.complete ? 'yes' : '**no**'}${s.duplicates > 0 ? `, ${int(s.duplicates)} duplicates` : ''} |`,
    ),
  ];
  // s3_uncompressed is not a default configuration: it only separates gzip's cost from the sink's.
  const network = sk.summary.filter((s) => s.sink !== 'file' && s.sink !== 's3_uncompressed');
  const pg = sk.summary.find((s) => s.sink === 'postgres');
  const cpuOk = network.every((s) => s.cpuVsFile <= SINK_CPU_GOAL);
  const rssOk = network.every((s) => s.peakRssMb < SINK_RSS_GOAL_MB);
  return [
    '## Sinks',
    '',
    `The real CLI (\`run --once\`) collects ${int(sk.events)} events from the Okta emulator into one sink per run, ` +
      `${sk.rounds} round${sk.rounds === 1 ? '' : 's'} in rotating order, the file sink in every round. Each destination ` +
      'runs in a process of its own: the test emulators for http, splunk_hec (indexer acknowledgement on, ' +
      '`ack_poll_interval_ms: 50`, indexing 20 ms after accepting) and elasticsearch; PostgreSQL 15 from initdb ' +
      '(`fsync = off`), rsyslogd (imtcp to omfile) and s3rver. Sinks use their default batch and request settings; ' +
      's3_uncompressed is the s3 sink with `compression: none` (gzip is its default), to show what gzip costs, and ' +
      'is not counted against the goals. ' +
      "CPU and peak RSS are the oktail process's; the CPU ratio is each run's over the file sink's in the same round " +
      "(the median when there are several rounds). events/s is distinct events held over the CLI's wall time. " +
      'After each run the destination is counted against the uuids served: every event present, none unknown, and ' +
      '"duplicates" are events held more than once (only the at-least-once sinks may have them).',
    '',
    `Machine: ${machineLine(sk)}. Command: \`${sk.command}\`.`,
    '',
    ...rows,
    '',
    `Goals: every network sink within ${SINK_CPU_GOAL}x the file sink's CPU per event: ${yes(cpuOk)}` +
      (cpuOk
        ? ''
        : ` (${network
            .filter((s) => !(s.cpuVsFile <= SINK_CPU_GOAL))
            .map((s) => `${s.sink} ${ratio(s.cpuVsFile)}`)
            .join(', ')})`) +
      `; every network sink's peak RSS under ${SINK_RSS_GOAL_MB} MB: ${yes(rssOk)}` +
      (rssOk
        ? ''
        : ` (${network
            .filter((s) => !(s.peakRssMb < SINK_RSS_GOAL_MB))
            .map((s) => `${s.sink} ${fixed(s.peakRssMb, 0)} MB`)
            .join(', ')})`) +
      `; postgres at least ${int(POSTGRES_GOAL)} events/s: ` +
      `${pg ? `${yes(pg.eventsPerSec >= POSTGRES_GOAL)} (${int(pg.eventsPerSec)})` : 'n/a'}.`,
    '',
    ...(pg ? postgresBudget(sk, pg) : []),
    ...SINK_NOTES,
  ];
}

/**
 * What the postgres run cost the whole machine, and what the server takes with the machine to itself: the
 * events/s goal is bounded by these, not by oktail alone.
 */
function postgresBudget(sk: SinksResult, pg: SinkSummary): string[] {
  const parts = [pg.cpuSecPer100k, pg.destinationCpuSecPer100k, pg.oktaEmulatorCpuSecPer100k];
  if (!parts.every(Number.isFinite) || pg.serverAloneEventsPerSec === undefined) return [];
  const perEventUs = (parts.reduce((a, b) => a + b, 0) / 100_000) * 1e6;
  const cores = sk.machine.cores;
  const ceiling = (cores / perEventUs) * 1e6;
  return [
    "postgres's events/s is bounded by the machine, not by oktail: during the runs (medians per 100,000 events) " +
      `oktail used ${fixed(pg.cpuSecPer100k)} CPU s, PostgreSQL's processes ${fixed(pg.destinationCpuSecPer100k)} ` +
      `and the Okta emulator ${fixed(pg.oktaEmulatorCpuSecPer100k)}: ${fixed(perEventUs, 0)} µs of CPU per event, ` +
      `so the ${cores} cores could carry at most ${int(ceiling)} events/s with every core busy all the time. ` +
      'After each run the same server, fed the served events by a client that only sends statements made before ' +
      "the clock starts (the sink's SQL, 500 events per statement, 2 connections), stored " +
      `${int(pg.serverAloneEventsPerSec)} events/s with the machine to itself, using ` +
      `${fixed(pg.serverAloneCpuSecPer100k ?? NaN)} CPU s per 100,000 events.`,
    '',
  ];
}

/**
 * What CPU profiles (`BENCH_CPU_PROF_DIR=dir` gives one per measured process) and separate measurements
 * showed, written down with the version they describe.
 */
const SINK_NOTES = [
  "Where the network sinks' CPU went, from `node --cpu-prof` of each run (`BENCH_CPU_PROF_DIR=<dir>` makes " +
    'the harness profile every measured process) and from `process.memoryUsage()` sampled every 10 ms: ' +
    "reading `uuid`, `published`, `eventType` and `severity` out of every event's bytes, and strings made per " +
    'event that lived as long as a request was in flight. Those outlived the young generation (which `run` ' +
    'keeps small, see the million above), so the old generation filled with them and the collector ran a full ' +
    'collection every few pages: the syslog run peaked at 65 MB of JavaScript heap and 146 MB RSS, postgres ' +
    '(its short columns already one string each) at 45 MB of heap, where the file sink stays at 25 MB.',
  '',
  "What changed: the page scan notes where each event's four fields lie while it walks the event's top level " +
    'anyway, so sinks read them without walking events again (one page of 1,000 emulator events, best of 60 on ' +
    'a loaded machine: scan and render 4.16 -> 4.27 µs per event; with `published` read 6.76 -> 4.53, with ' +
    '`uuid` and `published` 7.74 -> 4.29, all four 7.84 -> 4.66). syslog, splunk_hec and elasticsearch write ' +
    'their framing into the body piece by piece instead of a header string per event (syslog into one reused ' +
    'buffer); postgres sends uuid, published, eventType and source as one array literal each, as bytes, instead ' +
    "of node-postgres's quoted string per element, and the page's own NDJSON as the events parameter. In one " +
    'trial each (2026-11-29, load 3-5): syslog peak RSS 146 -> 107 MB and JavaScript heap 65 -> 26 MB; ' +
    'postgres heap 45 -> 24 MB, and CPU 1.9x the file sink (the quiet run of 04:31 UTC) -> 1.1x.',
  '',
  "s3's default is now gzip level 3 (`compression_level`): zlib's levels 1-3 use its fast strategy. On the " +
    "emulator's events (20 pages, best of 7 on 2026-11-29 06:13 UTC at load 1.3) level 1 took 9.5 µs per event and " +
    "shrank them 8.6 times, level 3 10.1 µs for 8.8 times, level 6 (zlib's default, the sink's until then) 20.0 µs for 10.9 times. The " +
    's3_uncompressed line is the same sink without compression.',
  '',
  "splunk_hec and elasticsearch read each event's `published` as epoch milliseconds straight from the page " +
    'bytes (`SinkItems.publishedMs`) instead of making a string and `Date.parse`-ing it, and HEC looks up the ' +
    "envelope's host/source tail only when the source changes. Framing one request of 1,000 emulator events for " +
    'HEC, as the helper hands them over (one trial, 2026-11-29 07:50 UTC, load about 1.5): the first framing of ' +
    'a page (as in a run, where each page is framed once) 14.7 -> 7.5 ms, later ones 2.9-5.3 -> 2.1-3.1 ms.',
  '',
  "The Okta emulator's own CPU is measured too (from /proc, like the destination's). Doing so showed that, " +
    'in the run of 2026-11-29 13:10 UTC, the emulator went from 0.74-0.91 s a run to 2.96-5.11 s from the seventh ' +
    "run on: V8's memory reducer had shrunk its old generation's limit to about the size of the 200,000 " +
    'events it holds, so each megabyte that serving promoted started a full marking of all of them (`--trace-gc`: ' +
    'a Mark-Compact every 0.2-0.4 s). That took CPU from every sink measured after it, postgres most (12,527-' +
    '13,804 events/s in rounds 2-5, 18,549 in round 1 of the same run). The emulator now runs with ' +
    '`--heap-growing-percent=300`: in 12 runs after the change it took 0.65-1.11 s each.',
  '',
  'The machine is a shared VM, and CPU seconds move with its neighbours: in one trial of 3 rounds (2026-11-29 ' +
    '08:00 UTC) the file sink took 4.10, 4.78 and 5.06 s for the same 200,000 events, and every ratio moves with ' +
    "its round's file run. The scenario therefore runs 5 rounds, and each ratio is the median of its 5.",
  '',
  "Tried and not kept: zlib's `memLevel: 9` for s3 (best of 25 on 20 pages: 6.33 -> 6.06 µs per event at " +
    'level 3, 4 %, too little to carry a setting); the postgres table with `toast_tuple_target = 8160`, which ' +
    'stores the events uncompressed and so skips lz4 (one trial on a local server: a 1,000-event INSERT 84 -> ' +
    '73 ms median, for a table 32 % larger: disk a security team pays for every day, against CPU the 20,000 ' +
    'events/s goal would still not reach).',
  '',
  'postgres is bound by the server: measured from /proc of the backend (its own CPU time, so the load of the ' +
    'machine matters little), one INSERT of a 1,000-event page costs the backend 47.5-49.5 ms of CPU, about 23 ms ' +
    'of it turning the texts into `jsonb` (the same INSERT into a `text` column: 24.5-25 ms). A `COLLATE "C"` ' +
    'uuid key changed nothing (47.5-47.8 ms), nor did COPY (binary) into a temporary table followed by INSERT ... ' +
    'SELECT ... ON CONFLICT (47.7-52.8 ms). So one backend at a full core stores at most about 21,000 events/s; ' +
    'with two connections (the default) both cores serve the server, the collector and the emulator at once, ' +
    'and the machine runs out of CPU first (the budget above). Reading ahead lets the backends work while the ' +
    'collector fetches the next page. The events are stored with lz4 instead of pglz when the server has it ' +
    '(`default_toast_compression`, set per connection), which cost the server a third less.',
  '',
  "Where the backend's CPU goes (perf, 2026-11-29 10:50 UTC, one connection inserting 500-event batches of " +
    "emulator events with lz4): `jsonb_in` 43 % (its JSON lexer alone 15 %, sorting each object's keys 6 %), " +
    "planning 11 % (most of it evaluating the parameters' array literals), the lz4 compression 9 %, " +
    '`heap_insert` 9 %, page faults 8 %. Splitting a page into more requests at once, each on its own ' +
    'connection, in single-round trials of 200,000 events between 10:35 and 10:57 UTC: 1,000 x 1 gave 12,312 ' +
    'events/s, 500 x 2 (the default) 16,028-17,018, 250 x 4 15,440-18,798 (four trials), 200 x 5 14,598, ' +
    "125 x 8 15,207: within the machine's noise of the default, and not kept. A named (prepared) statement " +
    'with 250 x 4 gave 14,615 and 15,112, also within it.',
  '',
  'Why more requests at once cannot help: during a postgres round (perf of the whole machine, 2026-11-29 ' +
    '12:52 UTC) the two backends took 9.1 and 9.0 CPU s, oktail 7.1 and the Okta emulator 1.0 in 15.9 s of ' +
    'wall time, with the machine idle 9 % of it. Sending a page before the one before it is committed would ' +
    'win at most that 9 %. Inside the backends `jsonb_in` took 51 % (its lexer 16 %, sorting keys 11 %, ' +
    'copying string characters one at a time with `appendStringInfoChar` 8 %), evaluating the array parameters while planning 11 %, the uuid index (the ON ' +
    'CONFLICT check and the insert) 17 %, lz4 10 %, growing the table file 8 % and starting new WAL files 5 %.',
  '',
  's3 writes one object of consecutive pages (since 2026-11-29; before, one per page): at the default ' +
    '`max_bytes` of 50 MB these events make objects of about 26,000 events, 8 a run instead of 200, so the ' +
    "SDK's cost per PutObject (3.1-3.5 ms of CPU per 220 KB object, against 0.8-1.3 ms for a plain undici PUT " +
    'of the same body) no longer counts. With gzip each page is deflated as it arrives, on the main thread, ' +
    'and the pieces are joined into one gzip member per object, so only compressed bytes are held. What is ' +
    'left over the file sink is mostly gzip: on 45,000 emulator events (88 MB) compressed at once in one ' +
    'process, level 3 took 7.1 µs per event (levels 1 and 2 7.8 and 7.6, level 4 14.8, level 6 19.2; median ' +
    "of 3). In a profile of the sink scenario's s3 round (2026-11-29 18:02 UTC) deflating took 1.75 s of the " +
    'main thread and the CRC-32 of the uncompressed bytes 0.18 s, for 200,000 events. The SDK is bundled into ' +
    'dist/bundle, in chunks only an s3 sink loads (115-140 ms of CPU to load it and send a first PutObject).',
  '',
  'On the way there, in trials of 200,000 events (3 rounds each, 2026-11-29 15:20-16:15 UTC): gathering the ' +
    'pages by copying each into fresh memory and joining the copies per object cost 10.3-11.5 CPU s against ' +
    "the file sink's 5.2-6.1 (page faults, and the full collections V8 runs for that much new external " +
    'memory); one buffer per source kept from object to object, 8.7-9.4 s against 5.4-5.9, at a peak RSS of ' +
    '176 MB; compressing each page as it arrives in a zlib stream, 7.7-8.4 s against 4.8-5.0, at ' +
    "107-113 MB. That stream ran on libuv's pool and handed each 16 KiB of output back to the main thread; " +
    'deflating each page on the main thread instead, alternating the two builds one round each (4 pairs, ' +
    '17:55-18:01 UTC), took 6.96, 7.72, 6.99 and 7.50 CPU s against 7.97, 8.98, 8.40 and 6.67, with the ' +
    "file sink's rounds at 3.88-4.91 s. Holding each page's compressed piece, joining the pieces per object and " +
    "the 16 KiB chunks zlib drops then made 18-19 full collections a run against the file sink's 5 (memory " +
    'outside the heap that grows between two full collections counts towards the next, and `run` lets the ' +
    'heap grow by only 25 %); writing the pieces into one buffer per source, reused from object to object, ' +
    'made 9. Alternating the two builds (4 pairs, 19:12-19:19 UTC): peak RSS 107-110 MB against 115-122, s3 ' +
    'CPU 8.17, 8.01, 8.46 and 7.84 s against 7.76, 8.49, 8.10 and 8.11 (no change beyond the noise).',
  '',
  "Tried for s3 and not kept: leaving out the SDK's CRC32 of each object (`requestChecksumCalculation: " +
    "'WHEN_REQUIRED'`). The SigV4 signature already holds the body's SHA-256, which S3 checks, but a bucket " +
    'with an S3 Object Lock retention refuses a PutObject that carries no checksum, and such buckets are what ' +
    "audit logs are kept in; the CRC32 is zlib's native one, about 20 ms of the main thread a run.",
  '',
];
