/*
 * Child processes of the benchmark: the emulator (over IPC) and the measured contenders, each of which
 * reports its own CPU time and peak RSS through usage.js.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { EmulatorCommand, EmulatorConfig, EmulatorReady, EmulatorReport } from './emulator-process.js';
import type {
  DestinationCommand,
  DestinationConfig,
  DestinationCount,
  DestinationCpu,
  DestinationReady,
  ServerAlone,
} from './sink-destination.js';
import { procStat } from './proc-stat.js';
import type { Usage } from './usage.js';

/** The compiled bench folder (this file's) and the repository root above it. */
export const BUILT = dirname(fileURLToPath(import.meta.url));
export const ROOT = findRoot(BUILT);

function findRoot(from: string): string {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'oktail') {
      return dir;
    }
  }
  throw new Error(`No oktail package.json above ${from}`);
}

export class EmulatorProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly ready: EmulatorReady,
  ) {}

  static async start(config: EmulatorConfig): Promise<EmulatorProcess> {
    const child = fork(join(BUILT, 'emulator-process.js'), [JSON.stringify(config)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Room for a million stored events. Once the process idles for a while (between runs), V8's memory
      // reducer shrinks the old generation's limit to about the stored events' size, and from then on
      // every megabyte or so that serving promotes starts a full marking of all of them: in one trial the
      // emulator's CPU for the same 200,000 events went from 0.7-1.0 s to 2.4-4.9 s a run after the
      // seventh run. Letting the old generation grow to 4x what survives keeps it at 0.7-1.1 s.
      execArgv: ['--max-old-space-size=4096', '--heap-growing-percent=300'],
    });
    const ready = await new Promise<EmulatorReady>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('The emulator did not start within 120 s')), 120_000);
      child.once('message', (m: EmulatorReady) => {
        clearTimeout(timer);
        resolve(m);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`The emulator exited with ${code}`));
      });
    });
    return new EmulatorProcess(child, ready);
  }

  /** The emulator process's CPU so far (ms). */
  cpuMs(): number {
    return procStat(this.child.pid!)?.cpuMs ?? NaN;
  }

  private ask<T>(command: EmulatorCommand, type: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`The emulator did not answer ${command.cmd}`)), 30_000);
      const onMessage = (m: { type: string }) => {
        if (m.type !== type) return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        resolve(m as T);
      };
      this.child.on('message', onMessage);
      this.child.send(command);
    });
  }

  report(): Promise<EmulatorReport> {
    return this.ask<EmulatorReport>({ cmd: 'report' }, 'report');
  }

  async reset(): Promise<void> {
    await this.ask({ cmd: 'reset' }, 'reset');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ cmd: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

export interface Measured {
  exitCode: number | null;
  wallMs: number;
  usage: Usage;
  stdout: string;
  stderr: string;
}

export interface MeasureOptions {
  /** Node.js arguments after the preload: a script and its arguments. */
  args: string[];
  env?: Record<string, string>;
  timeoutMs: number;
  usageFile: string;
}

/** Runs one contender to its end and returns what it reported about itself. */
export async function measure(options: MeasureOptions): Promise<Measured> {
  await rm(options.usageFile, { force: true });
  const preload = pathToFileURL(join(BUILT, 'usage.js')).href;
  const started = performance.now();
  // BENCH_CPU_PROF_DIR: a V8 CPU profile of each measured process, to see where its time goes.
  const profDir = process.env.BENCH_CPU_PROF_DIR;
  const prof = profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [];
  const child = spawn(process.execPath, [...prof, '--import', preload, ...options.args], {
    cwd: ROOT,
    env: { ...process.env, ...options.env, BENCH_USAGE_FILE: options.usageFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  const wallMs = performance.now() - started;
  clearTimeout(timer);
  let usage: Usage;
  try {
    usage = JSON.parse(await readFile(options.usageFile, 'utf8')) as Usage;
  } catch {
    throw new Error(`${options.args.join(' ')} left no usage report (exit ${exitCode}): ${stderr}`);
  }
  return { exitCode, wallMs, usage, stdout, stderr };
}

/** Starts a helper process that is not measured (the other client of a shared bucket). */
export function startHelper(args: string[]): { child: ChildProcess; output: Promise<string> } {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const output = new Promise<string>((resolve) => child.once('close', () => resolve(stdout)));
  return { child, output };
}

/** A sink's destination in its own process (bench/sink-destination.ts), driven over IPC. */
export class DestinationProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly ready: DestinationReady,
  ) {}

  static async start(config: DestinationConfig): Promise<DestinationProcess> {
    const child = fork(join(BUILT, 'sink-destination.js'), [JSON.stringify(config)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: ['--max-old-space-size=4096'],
    });
    const ready = await new Promise<DestinationReady>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`The ${config.type} destination did not start`)),
        180_000,
      );
      child.once('message', (m: DestinationReady) => {
        clearTimeout(timer);
        resolve(m);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`The ${config.type} destination exited with ${code}`));
      });
    });
    return new DestinationProcess(child, ready);
  }

  count(servedFile: string, expected: number): Promise<DestinationCount> {
    return this.#ask<DestinationCount>({ cmd: 'count', servedFile, expected }, 'count', 300_000);
  }

  /** CPU ms the destination has used so far, its server's processes included. */
  async cpuMs(): Promise<number> {
    return (await this.#ask<DestinationCpu>({ cmd: 'cpu' }, 'cpu', 30_000)).ms;
  }

  /** The server fed ready statements by a client that does nothing else (postgres only). */
  alone(servedFile: string): Promise<ServerAlone> {
    return this.#ask<ServerAlone>({ cmd: 'alone', servedFile }, 'alone', 300_000);
  }

  #ask<T extends { type: string }>(command: DestinationCommand, what: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`The destination did not answer ${what}`)), timeoutMs);
      this.child.once('message', (m: T | { type: 'error'; message: string }) => {
        clearTimeout(timer);
        if (m.type === what) resolve(m as T);
        else reject(new Error((m as { message?: string }).message ?? `unexpected answer ${m.type}`));
      });
      this.child.send(command);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ cmd: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}
