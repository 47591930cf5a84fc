import type { ConnectionOptions } from 'node:tls';
import { Agent, request } from 'undici';
import { OktailError } from '../../core/errors.js';
import type { SendOutcome, SinkDriver, SinkItems } from '../shared/network-sink.js';
import { describeTransportError, retryAfterMs } from '../shared/http-answers.js';
import { buildBulkBody, classifyBulkResponse, type BulkOutcome, type IndexTemplate } from './framing.js';

export interface ElasticsearchDriverOptions {
  endpoints: URL[];
  apiVersion: 'elasticsearch' | 'opensearch';
  index: IndexTemplate;
  /** The whole Authorization header value, or null. A secret. */
  authorization: string | null;
  connect: ConnectionOptions;
  userAgent: string;
}

/**
 * Sends events with `_bulk` `create` actions keyed by the Okta uuid, so the index holds every event
 * exactly once however often a batch is sent. Requests go to the endpoints in turn, so a node that is
 * down costs one retry, not a stall.
 *
 * Plain undici rather than the official clients: the shared helper already owns timeouts, retries with
 * backoff, splitting and concurrency, while the clients bring their own retries, connection pool and
 * TLS options (the 8.x client's bulk helper even retries 429 items itself). `_bulk` is one NDJSON POST,
 * the same for Elasticsearch and OpenSearch, and the product check the official client makes (the
 * `X-Elastic-Product` header) is made here too.
 */
export class ElasticsearchDriver implements SinkDriver {
  readonly #options: ElasticsearchDriverOptions;
  readonly #agent: Agent;
  #next = 0;
  #closed = false;

  constructor(options: ElasticsearchDriverOptions) {
    if (options.endpoints.length === 0) throw new Error('at least one endpoint');
    this.#options = options;
    this.#agent = new Agent({ connect: options.connect, keepAliveTimeout: 30_000 });
  }

  async send(items: SinkItems, signal: AbortSignal): Promise<SendOutcome> {
    const endpoint = this.#options.endpoints[this.#next % this.#options.endpoints.length]!;
    this.#next = (this.#next + 1) % this.#options.endpoints.length;
    const body = buildBulkBody(items, this.#options.index);
    const url = `${endpoint.href.replace(/\/+$/, '')}/_bulk`;
    let status: number;
    let text: string;
    let headers: Record<string, string | string[] | undefined>;
    try {
      const response = await request(url, {
        method: 'POST',
        dispatcher: this.#agent,
        signal,
        headers: {
          'content-type': 'application/x-ndjson',
          accept: 'application/json',
          'user-agent': this.#options.userAgent,
          ...(this.#options.authorization === null ? {} : { authorization: this.#options.authorization }),
        },
        body,
      });
      status = response.statusCode;
      headers = response.headers;
      text = await response.body.text();
    } catch (err) {
      return {
        kind: 'retry',
        reason: signal.aborted ? 'aborted' : 'network',
        error: error(`cannot reach ${endpoint.origin}: ${describeTransportError(err)}`, true, err),
      };
    }
    if (status >= 200 && status < 300 && this.#options.apiVersion === 'elasticsearch') {
      const product = headers['x-elastic-product'];
      if (product !== 'Elasticsearch') {
        return {
          kind: 'permanent',
          error: error(
            `${endpoint.origin} answered without the X-Elastic-Product: Elasticsearch header, so it is not Elasticsearch ` +
              '(7.14 or newer): set api_version: opensearch for OpenSearch',
            false,
          ),
        };
      }
    }
    return toSendOutcome(
      classifyBulkResponse(status, text, items, retryAfterMs(headers['retry-after'])),
      endpoint,
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#agent.close();
  }
}

function toSendOutcome(outcome: BulkOutcome, endpoint: URL): SendOutcome {
  const at = (message: string) => `${endpoint.origin}: ${message}`;
  switch (outcome.kind) {
    case 'ok':
    case 'partial':
      return outcome;
    case 'retry': {
      const result: SendOutcome = {
        kind: 'retry',
        reason: outcome.reason,
        error: error(at(outcome.message), true),
      };
      if (outcome.retryAfterMs !== undefined) result.retryAfterMs = outcome.retryAfterMs;
      return result;
    }
    case 'split':
      return { kind: 'split', error: error(at(outcome.message), true) };
    case 'permanent':
      return { kind: 'permanent', error: error(at(outcome.message), false) };
  }
}

function error(message: string, retryable: boolean, cause?: unknown): OktailError {
  return new OktailError('SINK_WRITE_FAILED', message, retryable, cause === undefined ? {} : { cause });
}
