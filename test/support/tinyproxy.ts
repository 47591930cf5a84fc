import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';

/** A real tinyproxy (Debian's), run in the foreground with its own config on a free loopback port. */
export interface Tinyproxy {
  port: number;
  /** `http://127.0.0.1:port`, or with `user:password@` when given. */
  url(credentials?: { user: string; password: string }): string;
  /** Its log so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

export function requireTinyproxy(): void {
  if (spawnSync('sh', ['-c', 'command -v tinyproxy']).status !== 0) {
    throw new Error('tinyproxy is not installed: apt-get install tinyproxy (.ci/run installs it)');
  }
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface TinyproxyOptions {
  connectPorts: number[];
  basicAuth?: { user: string; password: string };
}

export async function startTinyproxy(options: TinyproxyOptions): Promise<Tinyproxy> {
  return startTinyproxyAt(await freePort(), options);
}

/** On a given port (a config already names it). */
export async function startTinyproxyAt(port: number, options: TinyproxyOptions): Promise<Tinyproxy> {
  requireTinyproxy();
  // Its own folder outside the (0700) test folder: tinyproxy writes its log as an unprivileged user.
  const folder = await mkdtemp(join(tmpdir(), 'oktail-tinyproxy-'));
  const logFile = join(folder, 'tinyproxy.log');
  await writeFile(logFile, '');
  // Written by the unprivileged user tinyproxy switches to; the umask would keep it from writing.
  await chmod(logFile, 0o666);
  await chmod(folder, 0o777);
  const root = process.getuid?.() === 0;
  const lines = [
    // As root tinyproxy drops privileges; the log file is writable for that user.
    ...(root ? ['User nobody', 'Group nogroup'] : []),
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 60',
    `LogFile "${logFile}"`,
    'LogLevel Connect',
    'MaxClients 20',
    'Allow 127.0.0.1',
    'DisableViaHeader Yes',
    ...options.connectPorts.map((p) => `ConnectPort ${p}`),
    ...(options.basicAuth ? [`BasicAuth ${options.basicAuth.user} ${options.basicAuth.password}`] : []),
  ];
  const conf = join(folder, 'tinyproxy.conf');
  await writeFile(conf, lines.join('\n') + '\n');
  const child: ChildProcess = spawn('tinyproxy', ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  while (!(await accepting(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`tinyproxy did not start on port ${port}: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    url: (credentials) =>
      credentials
        ? `http://${credentials.user}:${credentials.password}@127.0.0.1:${port}`
        : `http://127.0.0.1:${port}`,
    log: () => readFile(logFile, 'utf8'),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(folder, { recursive: true, force: true });
    },
  };
}
