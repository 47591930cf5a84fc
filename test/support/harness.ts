import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach } from 'vitest';
import { OktaEmulator, type EmulatorOptions } from '../../src/emulator/emulator.js';
import type { EventRecord } from '../../src/emulator/events.js';
import {
  createTestPki,
  writePki,
  type PkiFiles,
  type TestPki,
  type TestPkiOptions,
} from '../../src/emulator/pki.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'bin', 'oktail.js');

/** Every value that must never show up in output, logs or state files. */
export const secrets = new Set<string>();

export const HOUR = 3600_000;

/** An ISO 8601 instant `ms` before now. */
export const ago = (ms: number): string => new Date(Date.now() - ms).toISOString();

export interface TestOrg {
  emulator: OktaEmulator;
  pki: TestPki;
  files: PkiFiles;
  token: string;
  domain: string;
  origin: string;
  dir: string;
  /** The environment a config from `writeConfig` needs: `OKTA_API_TOKEN`. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** A temp folder with a fresh PKI and a started emulator holding a test token. */
export async function startOrg(
  options: Partial<EmulatorOptions> & { pki?: TestPkiOptions; mtls?: boolean } = {},
): Promise<TestOrg> {
  const dir = await mkdtemp(join(tmpdir(), 'oktail-test-'));
  const pki = await createTestPki(options.pki);
  const files = await writePki(pki, join(dir, 'pki'));
  const token = `00tok${randomBytes(18).toString('base64url')}`;
  secrets.add(token);
  const { pki: _pki, mtls, ...emulatorOptions } = options;
  const tls = mtls ? { ...pki.server, ca: pki.caCert, requireClientCert: true } : pki.server;
  const emulator = new OktaEmulator({ tls, tokens: [token], ...emulatorOptions });
  const address = await emulator.start();
  return {
    emulator,
    pki,
    files,
    token,
    domain: address.domain,
    origin: address.origin,
    dir,
    env: { OKTA_API_TOKEN: token },
    async stop() {
      await emulator.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * For a test file: returns `startOrg`, with every org it started stopped (and its folder removed)
 * after each test, whether the test passed or not.
 */
export function useOrg(): typeof startOrg {
  const started: TestOrg[] = [];
  afterEach(async () => {
    for (const org of started.splice(0)) await org.stop();
  });
  return async (options) => {
    const org = await startOrg(options);
    started.push(org);
    return org;
  };
}

/** Child processes a test spawned, SIGKILLed after each test if they still run. */
export function useChildren(): (child: ChildProcess) => ChildProcess {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
  return (child) => {
    children.push(child);
    return child;
  };
}

export interface ConfigOptions {
  startFrom?: string;
  intervalSecs?: number;
  script?: string;
  tls?: Record<string, unknown>;
  sinks?: 'file' | 'stdout' | 'both' | 'none';
  /** Extra lines under `sinks:` (indented two spaces per level, as written). */
  sinkLines?: string[];
  extraSource?: string[];
  top?: string[];
  backoffMs?: number;
  timeoutSecs?: number;
  /** Lines under `auth:` (indented by the caller's 0); default the API token from OKTA_API_TOKEN. */
  auth?: string[];
}

/** Writes a config for one source reading `org`; the token comes from OKTA_API_TOKEN. */
export async function writeConfig(
  org: TestOrg,
  options: ConfigOptions = {},
): Promise<{ file: string; out: string }> {
  const out = join(org.dir, 'out', 'okta.ndjson');
  const tls = options.tls ?? { enabled: true, ca_file: org.files.caFile };
  const sinks = options.sinks ?? 'file';
  const lines = [
    `data_dir: ${JSON.stringify(join(org.dir, 'data'))}`,
    ...(options.top ?? []),
    'sources:',
    '  okta:',
    '    type: okta',
    `    domain: "${org.domain}"`,
    `    interval_secs: ${options.intervalSecs ?? 10}`,
    ...(options.startFrom ? [`    start_from: ${options.startFrom}`] : []),
    ...(options.script ? [`    script: ${JSON.stringify(options.script)}`] : []),
    `    request_timeout_secs: ${options.timeoutSecs ?? 10}`,
    '    retry:',
    `      initial_backoff_ms: ${options.backoffMs ?? 20}`,
    '      max_backoff_secs: 1',
    '    auth:',
    ...(options.auth ?? ['token: ${OKTA_API_TOKEN}']).map((l) => `      ${l}`),
    '    tls:',
    ...Object.entries(tls).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`),
    ...(options.extraSource ?? []).map((l) => `    ${l}`),
    'sinks:',
    ...(sinks === 'file' || sinks === 'both'
      ? ['  archive:', '    type: file', '    inputs: [okta]', `    path: ${JSON.stringify(out)}`]
      : []),
    ...(sinks === 'stdout' || sinks === 'both'
      ? ['  console:', '    type: stdout', '    inputs: [okta]']
      : []),
    ...(options.sinkLines ?? []),
  ];
  const file = join(org.dir, 'oktail.yaml');
  await writeFile(file, lines.join('\n') + '\n');
  return { file, out };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Throws if any known secret appears in `text`. */
export function assertNoSecret(text: string, where: string): void {
  for (const secret of secrets) {
    if (text.includes(secret)) throw new Error(`A secret leaked into ${where}`);
  }
}

/** `env` adds to the test's environment; a variable given as undefined is removed from it. */
export function spawnCli(args: string[], env: Record<string, string | undefined> = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: Object.fromEntries<string>(
      Object.entries({ ...process.env, ...env }).filter((e): e is [string, string] => e[1] !== undefined),
    ),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs the CLI to completion (or kills it after `timeoutMs`); output is checked for secrets. */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<CliResult> {
  const started = performance.now();
  const child = spawnCli(args, options.env);
  return collect(child, started, options.timeoutMs ?? 60_000);
}

export function collect(child: ChildProcess, started: number, timeoutMs: number): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      try {
        assertNoSecret(stdout, 'stdout');
        assertNoSecret(stderr, 'stderr');
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      resolvePromise({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** A file's text; empty when it does not exist. */
async function textOrEmpty(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The complete NDJSON lines of a file a collector may still be writing (empty when it does not exist): a
 * last line without its "\n" is a write in progress, not counted yet. For polling; a finished file is
 * read with `readLines`, which refuses a partial line.
 */
export async function completeLines(path: string): Promise<string[]> {
  const text = await textOrEmpty(path);
  const end = text.lastIndexOf('\n');
  return end < 0 ? [] : text.slice(0, end).split('\n');
}

/** The NDJSON lines of a file (empty when it does not exist). */
export async function readLines(path: string): Promise<string[]> {
  const text = await textOrEmpty(path);
  if (text !== '' && !text.endsWith('\n')) throw new Error(`${path} ends with a partial line`);
  return text === '' ? [] : text.slice(0, -1).split('\n');
}

const TAG = ',"_okta_event_type":"systemLog"}';

/**
 * Checks that `lines` are exactly `events`, in order, each byte-identical to what the emulator served
 * plus the tag. Returns a description of the first difference, or null.
 */
export function compareDelivery(lines: string[], events: readonly EventRecord[]): string | null {
  const seen = new Map<string, number>();
  for (const [i, line] of lines.entries()) {
    const uuid = (JSON.parse(line) as { uuid: string }).uuid;
    if (seen.has(uuid)) return `duplicate: ${uuid} at lines ${seen.get(uuid)! + 1} and ${i + 1}`;
    seen.set(uuid, i);
  }
  const missing = events.filter((e) => !seen.has(e.uuid));
  if (missing.length > 0) return `missing ${missing.length} events, first ${missing[0]!.uuid}`;
  if (lines.length !== events.length) return `${lines.length} lines for ${events.length} events`;
  for (const [i, event] of events.entries()) {
    const raw = event.raw.toString('utf8');
    const expected = raw.slice(0, -1) + TAG;
    if (lines[i] !== expected) return `line ${i + 1} differs from the served event ${event.uuid}`;
  }
  return null;
}

export async function readState(org: TestOrg): Promise<{
  sources: Record<string, { state: Record<string, unknown> }>;
  sinks: Record<string, { length: number }>;
}> {
  const text = await readFile(join(org.dir, 'data', 'state.json'), 'utf8');
  assertNoSecret(text, 'state.json');
  return JSON.parse(text) as never;
}

/** Lines of a file sink the checkpoint covers (0 before the first commit). */
export async function committedLines(org: TestOrg, sink: string, path: string): Promise<number> {
  const length = (await readState(org).catch(() => null))?.sinks[sink]?.length ?? 0;
  const bytes = (await readFile(path).catch(() => Buffer.alloc(0))).subarray(0, length);
  let lines = 0;
  for (let at = bytes.indexOf(10); at !== -1; at = bytes.indexOf(10, at + 1)) lines++;
  return lines;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `condition` until it holds; fails with `what` after `timeoutMs` (generous: a busy machine is slow). */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Where in a collector's progress `runKilledAt` SIGKILLs it: while its nth request waits for the answer,
 * as soon as the page that answer carries starts reaching the sink file, or once that page is committed
 * (the next request, which the source sends while the page is delivered, waits for its answer).
 */
export type KillPoint = 'in-flight' | 'writing' | 'committed';
export const KILL_POINTS: readonly KillPoint[] = ['in-flight', 'writing', 'committed'];

/**
 * Runs the CLI and SIGKILLs it at `point` of its `nth` request (counted from its start). The kill instant
 * follows the collector's progress, not a timer, so it happens on any machine speed. The caller keeps
 * more than `nth` full pages of backlog ahead of the checkpoint: the run can then neither end nor wait
 * for anything but the held answers before the kill.
 */
export async function runKilledAt(
  org: TestOrg,
  args: string[],
  options: { nth: number; point: KillPoint } & (
    | { sinkFile: string }
    /** Bytes the sinks hold so far, for sinks that write more than one file. */
    | { sinkBytes: () => Promise<number> }
  ),
): Promise<CliResult> {
  // The emulator logs requests as they arrive, so the nth one from here is this entry.
  const nthEntry = org.emulator.requests.length + options.nth - 1;
  const hold = org.emulator.holdFrom(options.nth);
  const child = spawnCli(args, org.env);
  const done = collect(child, performance.now(), 120_000);
  let exited = false;
  void done.then(
    () => (exited = true),
    () => (exited = true),
  );
  const reached = async (held: number): Promise<boolean> => {
    if (exited) throw new Error(`The collector exited before its request ${options.nth + held - 1}`);
    return hold.held() >= held;
  };
  const size =
    'sinkBytes' in options
      ? options.sinkBytes
      : async () => (await stat(options.sinkFile).catch(() => null))?.size ?? 0;
  try {
    await until(() => reached(1), `request ${options.nth}`, 60_000);
    if (options.point !== 'in-flight') {
      const before = await size();
      const statePath = join(org.dir, 'data', 'state.json');
      const stateBefore = await readFile(statePath).catch(() => null);
      hold.releaseOne();
      // The source reads one page ahead: request n+1 goes out while page n is still being delivered. After
      // a failed answer, nothing of page n is written or committed: request n+1 is its retry, the point.
      const failed = (): boolean => {
        const entry = org.emulator.requests[nthEntry];
        return entry?.status !== 200 || entry.fault !== undefined;
      };
      if (options.point === 'writing') {
        await until(
          async () => (await size()) > before || ((await reached(2)) && failed()),
          'the page reaching the file',
        );
      } else {
        await until(() => reached(2), `request ${options.nth + 1}`, 60_000);
        if (!failed()) {
          await until(async () => {
            const now = await readFile(statePath).catch(() => null);
            return now !== null && (stateBefore === null || !now.equals(stateBefore));
          }, `the checkpoint after request ${options.nth}`);
        }
      }
    }
    child.kill('SIGKILL');
    return await done;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await done.catch(() => undefined);
    hold.end();
  }
}
