import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** A free TCP port on loopback (the kernel picks it; the caller binds it right after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Debian keeps PostgreSQL's server binaries out of PATH, under /usr/lib/postgresql/<major>/bin. */
export async function postgresBinDir(): Promise<string | null> {
  let majors: string[];
  try {
    majors = await readdir('/usr/lib/postgresql');
  } catch {
    return null;
  }
  const found = majors
    .filter((m) => existsSync(join('/usr/lib/postgresql', m, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return found[0] ? join('/usr/lib/postgresql', found[0], 'bin') : null;
}

export interface PostgresServerOptions {
  /** PEM server certificate and key: the server then accepts TLS (ssl=on). */
  tls?: { cert: string; key: string };
}

/**
 * A throwaway PostgreSQL cluster: initdb in a temp dir, a free loopback port, password (SCRAM) auth.
 * initdb refuses to run as root, so as root every server command runs as the `postgres` user.
 */
export class PostgresServer {
  readonly superPassword = randomBytes(12).toString('base64url');
  port = 0;
  dir = '';
  #bin = '';
  #asUser: string[] = [];
  #tls: PostgresServerOptions['tls'];

  constructor(options: PostgresServerOptions = {}) {
    this.#tls = options.tls;
  }

  static async available(): Promise<boolean> {
    return (await postgresBinDir()) !== null;
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  /** A URL for the cluster's superuser, or for `user`/`password` when given. */
  url(database = 'postgres', user = 'postgres', password = this.superPassword): string {
    return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<void> {
    const bin = await postgresBinDir();
    if (!bin) throw new Error('PostgreSQL is not installed (.ci/run installs the Debian package)');
    this.#bin = bin;
    this.dir = await mkdtemp(join(tmpdir(), 'oktail-pg-'));
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      await chown(this.dir, uid, gid);
      this.#asUser = ['runuser', '-u', 'postgres', '--'];
    }
    const pwfile = join(this.dir, 'pwfile');
    await writeFile(pwfile, this.superPassword + '\n', { mode: 0o600 });
    if (this.#asUser.length > 0) await this.#chownToPostgres(pwfile);
    await this.#exec('initdb', [
      '-D',
      this.dataDir,
      '-U',
      'postgres',
      '--pwfile',
      pwfile,
      '--auth-host=scram-sha-256',
      '--auth-local=scram-sha-256',
      '-E',
      'UTF8',
      '--no-instructions',
    ]);
    await rm(pwfile);
    this.port = await freePort();
    const conf = [
      `port = ${this.port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${this.dir}'`,
      'max_connections = 40',
      // A test cluster on a shared disk: durability of the machine is not under test here.
      'fsync = off',
    ];
    if (this.#tls) {
      const cert = join(this.dir, 'server.crt');
      const key = join(this.dir, 'server.key');
      await writeFile(cert, this.#tls.cert);
      await writeFile(key, this.#tls.key, { mode: 0o600 });
      if (this.#asUser.length > 0) {
        await this.#chownToPostgres(cert);
        await this.#chownToPostgres(key);
      }
      conf.push('ssl = on', `ssl_cert_file = '${cert}'`, `ssl_key_file = '${key}'`);
      await writeFile(
        join(this.dataDir, 'pg_hba.conf'),
        'local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n',
      );
    }
    await writeFile(join(this.dataDir, 'postgresql.auto.conf'), conf.join('\n') + '\n');
    await this.startServer();
  }

  /** Starts (or restarts after `stopServer`) the server process and waits until it accepts connections. */
  async startServer(): Promise<void> {
    await this.#exec('pg_ctl', ['start', '-w', '-t', '60', '-D', this.dataDir, '-l', join(this.dir, 'log')]);
  }

  /** The running postmaster's PID (the first line of postmaster.pid): pg_ctl leaves it to run detached. */
  postmasterPid(): number {
    return Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  }

  /** `immediate` is a crash stop (no checkpoint, clients cut off mid-transaction). */
  async stopServer(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.#exec('pg_ctl', ['stop', '-w', '-t', '60', '-D', this.dataDir, '-m', mode]);
  }

  async stop(): Promise<void> {
    if (!this.dir) return;
    try {
      await this.stopServer('immediate');
    } catch {
      // Already stopped.
    }
    await rm(this.dir, { recursive: true, force: true });
    this.dir = '';
  }

  /** Runs SQL as the superuser on `database`. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
    database = 'postgres',
  ): Promise<pg.QueryResult<R>> {
    const client = new pg.Client({
      connectionString: this.url(database),
      ...(this.#tls ? { ssl: { rejectUnauthorized: false } } : {}),
    });
    await client.connect();
    try {
      return await client.query<R>(sql, params);
    } finally {
      await client.end();
    }
  }

  /** Creates a database owned by a new login role and returns that role's URL. */
  async createDatabase(name: string, user: string, password: string): Promise<string> {
    await this.query(`CREATE ROLE ${user} LOGIN PASSWORD '${password}'`);
    await this.query(`CREATE DATABASE ${name} OWNER ${user}`);
    return this.url(name, user, password);
  }

  async #chownToPostgres(path: string): Promise<void> {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    await chown(path, uid, gid);
  }

  async #exec(tool: string, args: string[]): Promise<void> {
    const [cmd, ...pre] = [...this.#asUser, join(this.#bin, tool)];
    try {
      await run(cmd, [...pre, ...args], { cwd: this.dir, timeout: 120_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${tool} failed: ${e.stderr ?? e.message}`);
    }
  }
}
