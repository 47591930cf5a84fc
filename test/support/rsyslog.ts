import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './postgres.js';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What rsyslog parsed out of one received RFC 5424 message. */
export interface ReceivedSyslog {
  pri: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  structuredData: string;
  msg: string;
}

export interface RsyslogOptions {
  /** PEM files for an RFC 5425 listener besides the plain TCP one. */
  tls?: { caFile: string; certFile: string; keyFile: string };
  /**
   * A further TLS listener (on `mtlsPort`) that requires a client certificate signed by `tls.caFile`:
   * gtls authMode x509/certvalid, or x509/name with the certificate names it permits.
   */
  clientAuth?: { mode: 'x509/certvalid' } | { mode: 'x509/name'; permittedPeers: string[] };
  /** rsyslog's maxMessageSize; receivers must raise it from the 8 KiB default for Okta events. */
  maxMessageSize?: string;
}

function findRsyslogd(): string | null {
  for (const p of ['/usr/sbin/rsyslogd', '/sbin/rsyslogd', '/usr/bin/rsyslogd']) if (existsSync(p)) return p;
  return null;
}

/**
 * Debian's rsyslogd in the foreground with a generated config: imtcp on a free loopback port (octet
 * counting is on by default), optionally a TLS listener (GnuTLS driver), every message written to a
 * file as one JSON object per line so tests can compare what arrived field by field.
 */
export class RsyslogServer {
  port = 0;
  tlsPort = 0;
  mtlsPort = 0;
  dir = '';
  #child: ChildProcess | null = null;
  #stderr = '';
  readonly #options: RsyslogOptions;

  constructor(options: RsyslogOptions = {}) {
    this.#options = options;
  }

  static available(): boolean {
    return findRsyslogd() !== null;
  }

  get outFile(): string {
    return join(this.dir, 'received.jsonl');
  }

  async start(): Promise<void> {
    const bin = findRsyslogd();
    if (!bin) throw new Error('rsyslogd is not installed (.ci/run installs the Debian package)');
    this.dir = await mkdtemp(join(tmpdir(), 'oktail-rsyslog-'));
    this.port = await freePort();
    const tls = this.#options.tls;
    if (tls) this.tlsPort = await freePort();
    const clientAuth = tls ? this.#options.clientAuth : undefined;
    if (clientAuth) this.mtlsPort = await freePort();
    const global = [
      `maxMessageSize="${this.#options.maxMessageSize ?? '256k'}"`,
      `workDirectory="${this.dir}"`,
      ...(tls
        ? [
            'defaultNetstreamDriver="gtls"',
            `defaultNetstreamDriverCAFile="${tls.caFile}"`,
            `defaultNetstreamDriverCertFile="${tls.certFile}"`,
            `defaultNetstreamDriverKeyFile="${tls.keyFile}"`,
          ]
        : []),
    ];
    const conf = [
      `global(${global.join(' ')})`,
      'module(load="imtcp" maxSessions="200")',
      `input(type="imtcp" address="127.0.0.1" port="${this.port}" ruleset="okta" streamDriver.name="ptcp")`,
      ...(tls
        ? [
            `input(type="imtcp" address="127.0.0.1" port="${this.tlsPort}" ruleset="okta"` +
              ' streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")',
          ]
        : []),
      ...(clientAuth
        ? [
            `input(type="imtcp" address="127.0.0.1" port="${this.mtlsPort}" ruleset="okta"` +
              ` streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="${clientAuth.mode}"` +
              (clientAuth.mode === 'x509/name'
                ? ` permittedPeer=[${clientAuth.permittedPeers.map((p) => JSON.stringify(p)).join(',')}]`
                : '') +
              ')',
          ]
        : []),
      'template(name="fields" type="list" option.jsonf="on") {',
      '  property(outname="pri" name="pri" format="jsonf" datatype="number")',
      '  property(outname="timestamp" name="timestamp" dateFormat="rfc3339" format="jsonf")',
      '  property(outname="hostname" name="hostname" format="jsonf")',
      '  property(outname="appName" name="app-name" format="jsonf")',
      '  property(outname="procId" name="procid" format="jsonf")',
      '  property(outname="msgId" name="msgid" format="jsonf")',
      '  property(outname="structuredData" name="structured-data" format="jsonf")',
      '  property(outname="msg" name="msg" format="jsonf")',
      '}',
      'ruleset(name="okta") {',
      `  action(type="omfile" file="${this.outFile}" template="fields")`,
      '}',
    ];
    const confFile = join(this.dir, 'rsyslog.conf');
    await writeFile(confFile, conf.join('\n') + '\n');
    await this.#spawn();
  }

  /** Stops rsyslogd (SIGTERM): connections are refused until `resume`. */
  async pause(): Promise<void> {
    await this.#kill();
  }

  /** Starts rsyslogd again on the same ports, keeping what it received. */
  async resume(): Promise<void> {
    if (this.#child) return;
    await this.#spawn();
  }

  /** Stops rsyslogd (SIGTERM) and starts it again on the same ports, keeping what it received. */
  async restart(): Promise<void> {
    await this.#kill();
    await this.#spawn();
  }

  async #spawn(): Promise<void> {
    const bin = findRsyslogd()!;
    const confFile = join(this.dir, 'rsyslog.conf');
    this.#child = spawn(bin, ['-n', '-f', confFile, '-i', join(this.dir, 'rsyslogd.pid')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.#stderr += d));
    const ports = [this.port, this.tlsPort, this.mtlsPort].filter((p) => p !== 0);
    for (const port of ports) await this.#waitListening(port);
  }

  /** Everything received so far (a line still being written is left for the next read). */
  async received(): Promise<ReceivedSyslog[]> {
    let text: string;
    try {
      text = await readFile(this.outFile, 'utf8');
    } catch {
      return [];
    }
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    return complete === ''
      ? []
      : complete
          .slice(0, -1)
          .split('\n')
          .map((l) => JSON.parse(l) as ReceivedSyslog);
  }

  /** Polls until at least `count` messages arrived (a generous deadline: the machine is shared). */
  async waitFor(count: number, timeoutMs = 60_000): Promise<ReceivedSyslog[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = await this.received();
      if (got.length >= count) return got;
      if (Date.now() > deadline) {
        throw new Error(`rsyslog received ${got.length} of ${count} messages; stderr: ${this.#stderr}`);
      }
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    await this.#kill();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = '';
  }

  async #kill(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }

  async #waitListening(port: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const child = this.#child;
      if (!child || child.exitCode !== null) throw new Error(`rsyslogd exited: ${this.#stderr}`);
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`rsyslogd did not listen on ${port}: ${this.#stderr}`);
      await sleep(50);
    }
  }
}
