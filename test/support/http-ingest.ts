import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import type { TestPki } from '../../src/emulator/pki.js';

/** How the emulator answers the next requests. */
export type IngestMode =
  | { kind: 'accept' }
  | { kind: 'status'; status: number; body?: string; retryAfter?: string }
  | { kind: 'hang' };

export interface IngestRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Decoded body bytes (gunzipped when the request said gzip). */
  body: Buffer;
  /** The events the body held, parsed (ndjson or a JSON array). */
  events: Record<string, unknown>[];
  status: number;
}

/**
 * A plain HTTP ingest endpoint for tests: HTTPS on loopback with the test PKI. It records what it
 * accepted (decoding gzip, ndjson and json_array), and can be told to answer a status (429 with
 * Retry-After, 5xx, 401...), to answer 413 above a size, or to hang.
 */
export class HttpIngest {
  readonly requests: IngestRequest[] = [];
  /** Events of accepted requests, in arrival order. */
  readonly accepted: Record<string, unknown>[] = [];
  mode: IngestMode = { kind: 'accept' };
  /** Bodies larger than this (decoded) get 413. */
  maxBodyBytes = Infinity;
  /** Answer this many requests with `mode` and then go back to accepting (undefined: until changed). */
  remaining: number | undefined;
  /** When set, a request without exactly this Authorization header gets 401. */
  expectAuthorization: string | undefined;
  readonly #server: Server;
  readonly #hanging = new Set<ServerResponse>();
  /** Requests whose body is still being read or answered. */
  #handling = 0;
  #url = '';

  constructor(pki: TestPki) {
    this.#server = createServer({ cert: pki.server.cert, key: pki.server.key }, (req, res) => {
      this.#handling++;
      void this.#handle(req, res).finally(() => this.#handling--);
    });
  }

  get url(): string {
    return this.#url;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const { port } = this.#server.address() as AddressInfo;
    this.#url = `https://127.0.0.1:${port}/ingest`;
    return this.#url;
  }

  async stop(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /**
   * Resolves once no client is connected and every request that arrived has been answered. A killed
   * client may have sent a whole request just before it died: the server still reads and answers it
   * (with the mode of that moment), so a test must wait for this before changing `mode`.
   */
  async quiet(timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const connections = await new Promise<number>((resolve, reject) =>
        this.#server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
      );
      if (connections === 0 && this.#handling === 0) return;
      if (performance.now() > deadline) {
        throw new Error(`ingest still has ${connections} connections and ${this.#handling} requests`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** uuids of accepted events, in order. */
  uuids(): string[] {
    return this.accepted.map((e) => String(e.uuid));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body = Buffer.concat(chunks);
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    const record = (status: number, events: Record<string, unknown>[] = []) =>
      this.requests.push({ path: req.url ?? '', headers: req.headers, body, events, status });

    let mode = this.mode;
    if (mode.kind !== 'accept' && this.remaining !== undefined) {
      if (this.remaining <= 0) mode = { kind: 'accept' };
      else this.remaining--;
    }
    if (mode.kind === 'hang') {
      record(0);
      this.#hanging.add(res);
      res.on('close', () => this.#hanging.delete(res));
      return;
    }
    if (this.expectAuthorization !== undefined && req.headers.authorization !== this.expectAuthorization) {
      record(401);
      res.writeHead(401, { 'content-type': 'text/plain' }).end('invalid credentials');
      return;
    }
    if (mode.kind === 'status') {
      record(mode.status);
      const headers: Record<string, string> = { 'content-type': 'text/plain' };
      if (mode.retryAfter !== undefined) headers['retry-after'] = mode.retryAfter;
      res.writeHead(mode.status, headers).end(mode.body ?? `status ${mode.status}`);
      return;
    }
    if (body.length > this.maxBodyBytes) {
      record(413);
      res.writeHead(413, { 'content-type': 'text/plain' }).end('payload too large');
      return;
    }
    let events: Record<string, unknown>[];
    try {
      events = parseEvents(body, String(req.headers['content-type'] ?? ''));
    } catch (err) {
      record(400);
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`bad body: ${(err as Error).message}`);
      return;
    }
    record(200, events);
    this.accepted.push(...events);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  }
}

function parseEvents(body: Buffer, contentType: string): Record<string, unknown>[] {
  const text = body.toString('utf8');
  if (contentType.includes('application/json')) return JSON.parse(text) as Record<string, unknown>[];
  if (text !== '' && !text.endsWith('\n')) throw new Error('ndjson body without a final newline');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
