/*
 * The package as `npm pack` makes it: bin/ and the bundle with the few files it reads, no unbundled
 * dist/. Unpacked into a folder of its own (its dependencies linked from this checkout's node_modules),
 * the CLI must still find its version, its built-in script, its console assets and its script worker.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HOUR,
  ROOT,
  ago,
  collect,
  readLines,
  useOrg,
  writeConfig,
  type CliResult,
} from './support/harness.js';

const run = promisify(execFile);
const startOrg = useOrg();

let dir: string;
let packed: string[];
let cli: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oktail-package-'));
  // The build is npm test's own (pretest); --ignore-scripts keeps pack from building a second time.
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], {
    cwd: ROOT,
  });
  const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  packed = info!.files.map((f) => f.path);
  await run('tar', ['-xzf', join(dir, info!.filename), '-C', dir]);
  await symlink(join(ROOT, 'node_modules'), join(dir, 'package', 'node_modules'));
  cli = join(dir, 'package', 'bin', 'oktail.js');
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function packagedCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [cli, ...args], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child, performance.now(), 60_000);
}

describe('the npm package', () => {
  it('holds the bundle and what it reads, not the unbundled build', () => {
    expect(packed).toContain('bin/oktail.js');
    expect(packed).toContain('dist/bundle/main.js');
    expect(packed).toContain('dist/bundle/script-worker.js');
    expect(packed).toContain('dist/script/okta.lua');
    expect(packed).toContain('dist/console/static/app.js');
    expect(
      packed.filter((p) => p.startsWith('dist/') && !p.startsWith('dist/bundle/') && p.endsWith('.js')),
    ).toEqual(['dist/console/static/app.js']);
  });

  it('reports its version and prints the built-in script', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const version = await packagedCli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);
    const script = await packagedCli(['script', 'print', 'okta']);
    expect(script.code).toBe(0);
    expect(script.stdout).toBe(await readFile(join(ROOT, 'src', 'script', 'okta.lua'), 'utf8'));
  });

  it('validates and runs a config whose script has a transform, in the script worker', async () => {
    const org = await startOrg();
    org.emulator.appendEvents(300, { publishedStart: Date.now() - HOUR, seed: 11 });
    const builtin = await readFile(join(ROOT, 'src', 'script', 'okta.lua'), 'utf8');
    const scriptPath = join(org.dir, 'tagged.lua');
    await writeFile(scriptPath, `${builtin}\nfunction transform(e) e.packaged = true return e end\n`);
    const { file, out } = await writeConfig(org, { startFrom: ago(2 * HOUR), script: scriptPath });

    const validate = await packagedCli(['validate', '-c', file], org.env);
    expect(validate.code, validate.stderr).toBe(0);
    expect(validate.stdout).toContain('is valid');

    const result = await packagedCli(['run', '--once', '-c', file], org.env);
    expect(result.code, result.stderr).toBe(0);
    const lines = await readLines(out);
    expect(lines).toHaveLength(300);
    expect(lines.every((l) => (JSON.parse(l) as { packaged?: boolean }).packaged === true)).toBe(true);
    const ids = lines.map((l) => (JSON.parse(l) as { uuid: string }).uuid);
    expect(ids).toEqual(
      org.emulator.allEvents().map((e) => (JSON.parse(e.raw.toString('utf8')) as { uuid: string }).uuid),
    );
  });
});
