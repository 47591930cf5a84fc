import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { Agent, request, type Dispatcher } from 'undici';
import { errorMessage } from '../../core/errors.js';
import type { SinkContext } from '../../core/registry.js';
import type { Sink } from '../../core/sink.js';
import { networkSinkSettings, tlsConnectOptions } from '../shared/config.js';
import { retryAfterMs } from '../shared/http-answers.js';
import {
  createNetworkSink,
  type SendOutcome,
  type SinkDriver,
  type SinkItems,
} from '../shared/network-sink.js';
import type { HttpSinkConfig } from './registration.js';

const gzip = promisify(gzipCallback);
const MAX_ERROR_TEXT = 500;

export async function createHttpSink(
  name: string,
  config: HttpSinkConfig,
  context: SinkContext,
): Promise<Sink> {
  const connect = await tlsConnectOptions(config.tls, `sinks.${name}.tls`);
  return createNetworkSink({
    name,
    inputs: config.inputs,
    type: 'http',
    driver: new HttpDriver(config, connect),
    settings: networkSinkSettings(config.batch, config.request),
    telemetry: context.telemetry,
    log: context.log,
  });
}

/**
 * POSTs one batch per request. 2xx means accepted; 429, 408, 5xx and transport errors are retried; 413
 * asks the helper to split the batch; any other status is permanent (the destination's own text is kept
 * for the halt message). The credential lives only in the request headers, never in an error.
 */
export class HttpDriver implements SinkDriver {
  readonly #config: HttpSinkConfig;
  readonly #dispatcher: Dispatcher;
  readonly #url: URL;
  readonly #headers: Record<string, string>;

  constructor(config: HttpSinkConfig, connect: Agent.Options['connect']) {
    this.#config = config;
    this.#url = new URL(config.uri);
    this.#dispatcher = new Agent({ connections: config.request.concurrency, connect });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(config.headers)) headers[k.toLowerCase()] = v;
    headers['content-type'] = config.encoding === 'ndjson' ? 'application/x-ndjson' : 'application/json';
    if (config.compression === 'gzip') headers['content-encoding'] = 'gzip';
    const auth = config.auth;
    if (auth?.strategy === 'bearer') headers.authorization = `Bearer ${auth.token}`;
    if (auth?.strategy === 'basic') {
      headers.authorization = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
    }
    this.#headers = headers;
  }

  async send(items: SinkItems, signal: AbortSignal): Promise<SendOutcome> {
    let body = encode(items, this.#config.encoding);
    if (this.#config.compression === 'gzip') body = await gzip(body);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.#url, {
        method: 'POST',
        dispatcher: this.#dispatcher,
        signal,
        headers: this.#headers,
        body,
      });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const reason = typeof code === 'string' ? code : 'network';
      return {
        kind: 'retry',
        reason,
        error: new Error(`POST ${this.#where()} failed: ${errorMessage(err)}`),
      };
    }
    const text = await readText(res.body);
    const status = res.statusCode;
    if (status >= 200 && status < 300) return { kind: 'ok' };
    const error = new Error(`${this.#where()} answered HTTP ${status}${text ? `: ${text}` : ''}`);
    if (status === 413) return { kind: 'split', error };
    if (status === 429 || status === 408 || status >= 500) {
      const waitMs = retryAfterMs(res.headers['retry-after']);
      return {
        kind: 'retry',
        reason: `http_${status}`,
        error,
        ...(waitMs === undefined ? {} : { retryAfterMs: waitMs }),
      };
    }
    const fix =
      status === 401 || status === 403
        ? '; check auth'
        : status === 404
          ? '; check uri'
          : '; check the destination accepts this format (encoding, compression, headers)';
    return { kind: 'permanent', error: new Error(error.message + fix) };
  }

  /** The destination without credentials or query (which may hold a token). */
  #where(): string {
    return `${this.#url.origin}${this.#url.pathname}`;
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }
}

/** The request body: the page's own NDJSON bytes, or the events between brackets and commas. */
function encode(items: SinkItems, encoding: 'ndjson' | 'json_array'): Buffer {
  if (encoding === 'ndjson') return items.ndjson();
  let total = 2 + Math.max(0, items.length - 1);
  for (let i = 0; i < items.length; i++) total += items.byteLength(i);
  const body = Buffer.allocUnsafe(total);
  let at = 0;
  body[at++] = 0x5b; // [
  for (let i = 0; i < items.length; i++) {
    if (i > 0) body[at++] = 0x2c; // ,
    at += items.copyBytes(i, body, at);
  }
  body[at] = 0x5d; // ]
  return body;
}

async function readText(body: Dispatcher.ResponseData['body']): Promise<string> {
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (size < MAX_ERROR_TEXT) chunks.push(chunk);
      size += chunk.length;
    }
    return Buffer.concat(chunks).toString('utf8').slice(0, MAX_ERROR_TEXT).replace(/\s+/g, ' ').trim();
  } catch {
    return '';
  }
}
