import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { OktailError, errorMessage } from '../../core/errors.js';
import type { SendOutcome, SinkDriver, SinkItems } from '../shared/network-sink.js';
import { syslogFrames } from './frame.js';

export interface SyslogDriverOptions {
  /** Sink name, for messages. */
  name: string;
  host: string;
  port: number;
  mode: 'tcp' | 'tls';
  facility: number;
  /** TLS client options (CA, client certificate, verification), for mode 'tls'. */
  tls?: ConnectionOptions;
}

/** How long a new TLS connection whose receiver asked for a client certificate must stay open before use. */
const VERDICT_MS = 1000;

/** The receiver hung up right after a TLS handshake in which it asked for a client certificate. */
class ClientCertificateRefused extends Error {}

/** TLS verification failures: retrying cannot fix them, the config or the receiver's certificate must change. */
const CERTIFICATE_ERRORS = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
]);

/** One connection and what has happened to it since it was opened. */
interface Connection {
  socket: Socket | TLSSocket;
  /** Set once the peer closed its side, reset the connection, or an error occurred. */
  broken: Error | null;
}

/**
 * RFC 5424 over TCP or TLS with octet counting. Syslog has no acknowledgement: a batch counts as
 * delivered once the kernel took all its bytes and the connection showed no sign of trouble until
 * then (no error, no reset, no close by the receiver). Any such sign makes the whole batch go again on a
 * new connection, so a receiver may see part of it twice: at least once.
 *
 * One connection, one batch at a time: writes of concurrent requests would interleave on the stream,
 * and a failure could not be pinned to one of them.
 */
export class SyslogDriver implements SinkDriver {
  readonly #o: SyslogDriverOptions;
  #conn: Connection | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /**
   * Frames are written into this one buffer, reused from batch to batch (batches go one at a time): a
   * fresh 2 MB buffer per page, freed at some later collection, kept the process's peak memory tens of
   * MB higher. After a failed write it is let go, in case the dropped socket still held it.
   */
  #frames: Buffer | null = null;
  readonly #framesOf = (size: number): Buffer => {
    if (this.#frames === null || size > this.#frames.length) {
      this.#frames = Buffer.allocUnsafeSlow(Math.max(size, Math.ceil((this.#frames?.length ?? 0) * 1.5)));
    }
    return this.#frames.subarray(0, size);
  };

  constructor(options: SyslogDriverOptions) {
    this.#o = options;
  }

  get #where(): string {
    return `${this.#o.mode === 'tls' ? 'tls' : 'tcp'}://${this.#o.host}:${this.#o.port}`;
  }

  send(items: SinkItems, signal: AbortSignal): Promise<SendOutcome> {
    const turn = this.#queue.then(() => this.#send(items, signal));
    this.#queue = turn.catch(() => undefined);
    return turn;
  }

  async #send(items: SinkItems, signal: AbortSignal): Promise<SendOutcome> {
    if (this.#closed) {
      return {
        kind: 'permanent',
        error: new OktailError('SINK_WRITE_FAILED', `Sink ${this.#o.name} is closed`),
      };
    }
    if (signal.aborted) return this.#retry('aborted', signal.reason);
    const frames = syslogFrames(items, this.#o.facility, this.#framesOf);
    let conn: Connection;
    try {
      conn = await this.#connection(signal);
    } catch (err) {
      return this.#failed('connect', err);
    }
    const abort = () => conn.socket.destroy(new Error('request timed out or shutting down'));
    signal.addEventListener('abort', abort, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        conn.socket.write(frames, (err) => (err ? reject(err) : resolve()));
      });
      // Let a reset or close that arrived with the last bytes surface before calling the batch delivered.
      await new Promise((resolve) => setImmediate(resolve));
      if (conn.broken) throw conn.broken;
      return { kind: 'ok' };
    } catch (err) {
      this.#drop(conn);
      this.#frames = null;
      return this.#failed('write', conn.broken ?? err);
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }

  #failed(stage: 'connect' | 'write', err: unknown): SendOutcome {
    if (err instanceof ClientCertificateRefused) {
      const presented = this.#o.tls?.cert !== undefined;
      const error = new OktailError(
        'SINK_WRITE_FAILED',
        `Sink ${this.#o.name}: the syslog receiver ${this.#where} asked for a client certificate and closed ` +
          'the connection right after the TLS handshake, before anything was sent: ' +
          (presented
            ? 'it refused the certificate of tls.crt_file (not signed by a CA it trusts, or a name it does not permit), or it is restarting'
            : 'it requires one; set tls.crt_file and tls.key_file') +
          ` (${err.message})`,
        presented,
        { cause: err.cause },
      );
      // Without a certificate retrying cannot help; with one, a receiver restart looks the same, so it
      // is retried (and logged with this message on every attempt).
      return presented
        ? { kind: 'retry', reason: 'connect: client certificate refused', error }
        : { kind: 'permanent', error };
    }
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (code !== undefined && CERTIFICATE_ERRORS.has(code)) {
      return {
        kind: 'permanent',
        error: new OktailError(
          'SINK_WRITE_FAILED',
          `Sink ${this.#o.name}: the syslog receiver ${this.#where} presented a certificate that failed ` +
            `verification (${code}: ${errorMessage(err)}); set tls.ca_file to the CA that signed it, or fix ` +
            "the receiver's certificate",
          false,
          { cause: err },
        ),
      };
    }
    return this.#retry(
      stage === 'connect' ? `connect: ${code ?? 'error'}` : `write: ${code ?? 'error'}`,
      err,
    );
  }

  #retry(reason: string, err: unknown): SendOutcome {
    const error = new OktailError(
      'SINK_WRITE_FAILED',
      `Sink ${this.#o.name}: sending to the syslog receiver ${this.#where} failed (${errorMessage(err)})`,
      true,
      { cause: err },
    );
    return { kind: 'retry', reason, error };
  }

  async #connection(signal: AbortSignal): Promise<Connection> {
    if (this.#conn && !this.#conn.broken) return this.#conn;
    if (this.#conn) this.#drop(this.#conn);
    const { host, port } = this.#o;
    const socket =
      this.#o.mode === 'tls'
        ? tlsConnect({ ...this.#o.tls, host, port, servername: isIpLiteral(host) ? undefined : host })
        : tcpConnect({ host, port });
    const conn: Connection = { socket, broken: null };
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on('error', (err: Error) => {
      conn.broken ??= err;
    });
    // A receiver that closes its side will reset whatever we send next; nothing written after this counts.
    socket.on('end', () => (conn.broken ??= new Error('the receiver closed the connection')));
    socket.on('close', () => (conn.broken ??= new Error('the connection closed')));
    // Syslog receivers never send data; reading keeps 'end' and resets observable.
    socket.resume();
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => socket.destroy(new Error('connect timed out or shutting down'));
      signal.addEventListener('abort', onAbort, { once: true });
      const done = (err?: Error) => {
        signal.removeEventListener('abort', onAbort);
        socket.off('error', done);
        if (err) reject(err);
        else resolve();
      };
      socket.once(this.#o.mode === 'tls' ? 'secureConnect' : 'connect', () => done());
      socket.once('error', done);
    }).catch((err: unknown) => {
      socket.destroy();
      throw err;
    });
    if (this.#o.mode === 'tls') await this.#awaitVerdict(conn, socket as TLSSocket, signal);
    this.#conn = conn;
    return conn;
  }

  /**
   * In TLS 1.3 the client's handshake ends before the receiver has checked the client's certificate, and
   * receivers such as rsyslog check it only once their handshake is done (also in TLS 1.2): a refused or
   * missing certificate shows as the receiver hanging up a moment after 'secureConnect'. A batch written
   * in that moment would count as delivered and be lost. So when the receiver asked for a certificate
   * (a client sees signature algorithms shared with the peer only from a CertificateRequest), the new
   * connection is used only once it stayed open for VERDICT_MS; the receiver's verdict takes a round
   * trip and a certificate check, far less than that. Connections are long-lived: this costs once each.
   */
  async #awaitVerdict(conn: Connection, socket: TLSSocket, signal: AbortSignal): Promise<void> {
    if (socket.getSharedSigalgs().length === 0) return;
    await new Promise<void>((resolve, reject) => {
      const finish = (err?: Error) => {
        clearTimeout(timer);
        socket.off('close', onClose);
        signal.removeEventListener('abort', onAbort);
        if (err) {
          socket.destroy();
          reject(err);
        } else resolve();
      };
      const onClose = () =>
        finish(new ClientCertificateRefused(conn.broken?.message ?? 'closed', { cause: conn.broken }));
      const onAbort = () => finish(new Error('connect timed out or shutting down'));
      const timer = setTimeout(() => finish(), VERDICT_MS);
      if (conn.broken || socket.destroyed) {
        onClose();
        return;
      }
      socket.once('close', onClose);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #drop(conn: Connection): void {
    conn.broken ??= new Error('dropped');
    conn.socket.destroy();
    if (this.#conn === conn) this.#conn = null;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
    const conn = this.#conn;
    this.#conn = null;
    if (!conn || conn.socket.destroyed) return;
    // A graceful end flushes what the kernel still holds before the FIN.
    await new Promise<void>((resolve) => {
      conn.socket.once('close', () => resolve());
      conn.socket.end();
      setTimeout(() => conn.socket.destroy(), 5000).unref();
    });
  }
}

function isIpLiteral(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':');
}
