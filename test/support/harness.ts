import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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

export interface TestOrg {
  emulator: OktaEmulator;
  pki: TestPki;
  files: PkiFiles;
  token: string;
  domain: string;
  origin: string;
  dir: string;
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
    async stop() {
      await emulator.stop();
      await rm(dir, { recursive: true, force: true });
    },
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

export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs the CLI to completion (or kills it after `timeoutMs`); output is checked for secrets. */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
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

/** The NDJSON lines of a file (empty when it does not exist). */
export async function readLines(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return [];
  }
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
