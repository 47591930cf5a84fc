/*
 * Start-up scenario: how long the commands that do little work take from `node` starting to exit, the
 * median of 10 runs per command. Runs the current build and, with `--baseline-build DIR` (a copy of an
 * older build: its bin/, dist/ and package.json), the same commands from that build, interleaved so a busy
 * machine weighs on both alike.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Machine } from './results.js';

export const STARTUP_RUNS = 10;

export interface StartupCommand {
  name: string;
  args: string[];
}

export interface StartupBuild {
  build: string;
  /** Median wall time per command, milliseconds. */
  medianMs: Record<string, number>;
  runsMs: Record<string, number[]>;
}

export interface StartupResult {
  scenario: 'startup';
  machine: Machine;
  runs: number;
  commands: StartupCommand[];
  current: StartupBuild;
  baseline: StartupBuild | null;
  /** `node -e 0`, median of the same number of runs. */
  nodeMedianMs?: number;
  /** A figure measured earlier from another build and recorded by hand, when no baseline build was run. */
  recordedBaseline?: { build: string; medianMs: Record<string, number>; note: string };
}

const SCRIPT = `
function initial_state(ctx) return { since = ctx.start_from or ctx.now } end
function cycle_request(state) return "/api/v1/logs?since=" .. url_encode(state.since) end
function after_page(state, page) return state, nil end
function transform(event) return event end
`;

/** The config of the README's quick start, and one that names a script (validate then checks it). */
async function writeConfigs(dir: string): Promise<{ plain: string; scripted: string }> {
  await mkdir(dir, { recursive: true });
  const base = (script: boolean) =>
    [
      `data_dir: ${JSON.stringify(join(dir, 'data'))}`,
      'sources:',
      '  okta:',
      '    type: okta',
      '    domain: acme.okta.com',
      '    start_from: 2026-11-01T00:00:00Z',
      ...(script ? [`    script: ${JSON.stringify(join(dir, 'my-okta.lua'))}`] : []),
      '    auth:',
      '      token: ${OKTA_API_TOKEN}',
      'sinks:',
      '  archive:',
      '    type: file',
      '    inputs: [okta]',
      `    path: ${JSON.stringify(join(dir, 'okta.ndjson'))}`,
      '',
    ].join('\n');
  const plain = join(dir, 'oktail.yaml');
  const scripted = join(dir, 'oktail-script.yaml');
  await writeFile(plain, base(false));
  await writeFile(scripted, base(true));
  await writeFile(join(dir, 'my-okta.lua'), SCRIPT);
  return { plain, scripted };
}

function timeRun(root: string | null, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const argv = root === null ? args : [join(root, 'bin', 'oktail.js'), ...args];
    const child = spawn(process.execPath, argv, {
      // `validate` still wants the token variable set, though it never sends it.
      env: { ...process.env, OKTA_API_TOKEN: 'bench-token' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = performance.now() - started;
      if (code !== 0) reject(new Error(`oktail ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve(ms);
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export async function startup(options: {
  machine: Machine;
  root: string;
  workDir: string;
  baselineBuild: string | null;
  runs?: number;
}): Promise<StartupResult> {
  const runs = options.runs ?? STARTUP_RUNS;
  const configs = await writeConfigs(join(options.workDir, 'startup'));
  const commands: StartupCommand[] = [
    { name: 'oktail --help', args: ['--help'] },
    { name: 'oktail validate -c FILE', args: ['validate', '-c', configs.plain] },
    { name: 'oktail validate -c FILE (with a script)', args: ['validate', '-c', configs.scripted] },
    { name: 'oktail state show -c FILE', args: ['state', 'show', '-c', configs.plain] },
  ];
  // Node.js alone, for scale: what no command can go below on this machine at this moment.
  const nodeMs: number[] = [];
  for (let i = 0; i < runs; i++) nodeMs.push(await timeRun(null, ['-e', '0']));
  const builds = [options.root, ...(options.baselineBuild ? [options.baselineBuild] : [])];
  const times = builds.map(() => new Map<string, number[]>(commands.map((c) => [c.name, []])));
  console.log(`Start-up: ${commands.length} commands x ${runs} runs x ${builds.length} build(s)`);
  for (let i = 0; i < runs; i++) {
    for (const command of commands) {
      for (let b = 0; b < builds.length; b++) {
        // Alternating which build goes first evens out a machine that gets busier or quieter.
        const which = (b + i) % builds.length;
        times[which]!.get(command.name)!.push(await timeRun(builds[which]!, command.args));
      }
    }
  }
  const summary = (b: number): StartupBuild => {
    const medianMs: Record<string, number> = {};
    const runsMs: Record<string, number[]> = {};
    for (const [name, ms] of times[b]!) {
      medianMs[name] = Math.round(median(ms));
      runsMs[name] = ms.map((x) => Math.round(x));
    }
    return { build: b === 0 ? 'this build' : builds[b]!, medianMs, runsMs };
  };
  const result: StartupResult = {
    scenario: 'startup',
    machine: options.machine,
    runs,
    commands: commands.map((c) => ({
      name: c.name,
      args: c.args.map((a) => a.replace(options.workDir, '…')),
    })),
    current: summary(0),
    baseline: builds.length > 1 ? summary(1) : null,
    nodeMedianMs: Math.round(median(nodeMs)),
  };
  for (const c of commands) {
    const base = result.baseline ? `, baseline ${result.baseline.medianMs[c.name]} ms` : '';
    if (c === commands[0]) console.log(`  node -e 0: median ${result.nodeMedianMs} ms`);
    console.log(`  ${c.name}: median ${result.current.medianMs[c.name]} ms${base}`);
  }
  return result;
}
