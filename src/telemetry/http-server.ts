import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from './logger.js';
import type { Readiness } from './readiness.js';
import { listen } from './listen.js';

export interface ApiEndpoints {
  scrape(): Promise<{ contentType: string; body: string }>;
  ready(): Readiness;
}

export interface ApiServerOptions {
  /** host and port to listen on; port 0 picks a free one. */
  host: string;
  port: number;
  endpoints: ApiEndpoints;
  log: Logger;
}

/**
 * `/metrics` (Prometheus text), `/health` (the process answers) and `/ready` (every source running and
 * making progress). Read-only and small on purpose: nothing here can change what the collector does.
 */
export class ApiServer {
  readonly #o: ApiServerOptions;
  #server: Server | null = null;

  constructor(options: ApiServerOptions) {
    this.#o = options;
  }

  /** Listens and returns the URL it answers on. */
  async start(): Promise<string> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#o.log.warn({ error: err instanceof Error ? err.message : String(err) }, 'API request failed.');
        if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
        else res.destroy();
      });
    });
    const url = `http://${await listen(server, this.#o.host, this.#o.port)}`;
    this.#server = server;
    this.#o.log.info({ url }, 'API listening for /metrics, /health and /ready.');
    return url;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/metrics': {
        const { contentType, body } = await this.#o.endpoints.scrape();
        send(res, 200, contentType, body);
        return;
      }
      case '/health':
        sendJson(res, 200, { status: 'ok' });
        return;
      case '/ready': {
        const readiness = this.#o.endpoints.ready();
        const failing = readiness.sources.filter((s) => !s.ready).map((s) => s.source);
        sendJson(res, readiness.ready ? 200 : 503, {
          status: readiness.ready ? 'ready' : 'not ready',
          ...(failing.length > 0 ? { failing } : {}),
          sources: readiness.sources,
        });
        return;
      }
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics, /health or /ready\n');
    }
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value) + '\n');
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  const bytes = Buffer.from(body);
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': bytes.length,
    'cache-control': 'no-store',
  });
  res.end(res.req.method === 'HEAD' ? undefined : bytes);
}
