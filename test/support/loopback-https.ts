import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The HTTPS listener the destination emulators share: loopback, a free port, keep-alive (the sinks keep
 * connections open, and a restart test must be able to cut them), and a request handler whose failure
 * destroys the connection the way a crashing server would.
 */
export abstract class LoopbackHttpsServer {
  readonly #tls: { cert: string; key: string };
  readonly #label: string;
  #server: Server | null = null;
  #origin: string | null = null;

  constructor(tls: { cert: string; key: string }, label: string) {
    this.#tls = tls;
    this.#label = label;
  }

  protected abstract handle(req: IncomingMessage, res: ServerResponse): Promise<void>;

  async start(): Promise<string> {
    if (this.#origin !== null) return this.#origin;
    const server = createServer({ cert: this.#tls.cert, key: this.#tls.key, keepAlive: true });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.#origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.#origin;
  }

  get origin(): string {
    if (this.#origin === null) throw new Error(`The ${this.#label} has not been started.`);
    return this.#origin;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server)
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
  }
}
