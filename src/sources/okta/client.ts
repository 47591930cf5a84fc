import { request, type Dispatcher } from 'undici';
import { OktailError, errorMessage } from '../../core/errors.js';
import type { AuthTransport } from './auth/oauth.js';
import { BearerAuth, type AuthProvider } from './auth/provider.js';
import { createDispatcher, describeProxyFailure, type ProxySettings } from './proxy.js';

export interface OktaTlsSettings {
  /** PEM of extra/private CAs to trust instead of the default store. */
  ca?: string | Buffer;
  /** Client certificate and key for mTLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  passphrase?: string;
  verifyCertificate: boolean;
  verifyHostname: boolean;
}

export interface OktaClientSettings {
  /** `host[:port]` of the org, no scheme. */
  domain: string;
  /** An API token, or a factory for another provider (OAuth) that talks through this client's connection. */
  auth: { header: string; prefix: string; token: string } | ((transport: AuthTransport) => AuthProvider);
  /** undefined = standard HTTPS with the default trust store. */
  tls?: OktaTlsSettings;
  /** null or absent: direct connection. */
  proxy?: ProxySettings | null;
  requestTimeoutMs: number;
  userAgent: string;
  /**
   * Awaited before each request to the org; rejects to refuse it (a replica that no longer surely holds
   * the source's lease must not poll the org while another replica may).
   */
  beforeRequest?: () => Promise<void>;
}

export interface FetchedPage {
  url: string;
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string>;
  /**
   * For a 200, a view on one of the client's reused body buffers (the one `fetch` was asked for): valid
   * until the next `fetch` into the same buffer, which overwrites it.
   */
  body: Buffer;
  /** Local clock when the response headers arrived. */
  receivedAtMs: number;
  ms: number;
}

const MAX_ERROR_BODY = 64 * 1024;
/** The body buffer's first size; it grows (by half again) to the largest page seen and then stays. */
const MIN_BODY_BUFFER = 256 * 1024;
/** Re-sends of one request with fresh credentials (a new DPoP nonce, a renewed token). */
const MAX_AUTH_RETRIES = 2;

/**
 * The only holder of the connection that carries credentials. It sends them to the configured origin and
 * nowhere else, and never puts them in an error. Every non-200 answer becomes an OktailError classified
 * per the product's error table, so callers decide only "retry" or "halt".
 */
export class OktaHttpClient implements AuthTransport {
  readonly origin: string;
  readonly auth: AuthProvider;
  readonly proxy: ProxySettings | null;
  readonly #dispatcher: Dispatcher;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  readonly #beforeRequest: (() => Promise<void>) | undefined;
  /**
   * Every 200 body is read into one of two buffers (the second is used only by a source that reads a
   * page ahead while a script still reads the current one). A fresh 2 MB buffer per page (plus the chunks it was
   * assembled from) lives outside V8's heap, which frees it only when it next collects: pages allocate
   * so little inside the heap that tens of MB of dead bodies piled up between collections. It is shared
   * memory, so a script's thread reads a page where it is instead of receiving a copy or the buffer
   * itself (moving a buffer between threads costs more than its bytes' worth).
   */
  #bodyBuffers: [Buffer, Buffer] = [Buffer.alloc(0), Buffer.alloc(0)];

  constructor(settings: OktaClientSettings) {
    this.origin = `https://${settings.domain}`;
    this.#timeoutMs = settings.requestTimeoutMs;
    this.#userAgent = settings.userAgent;
    this.#beforeRequest = settings.beforeRequest;
    this.proxy = settings.proxy ?? null;
    this.#dispatcher = createDispatcher({
      tls: settings.tls,
      proxy: this.proxy,
      timeoutMs: settings.requestTimeoutMs,
    });
    this.auth = typeof settings.auth === 'function' ? settings.auth(this) : new BearerAuth(settings.auth);
  }

  /** Resolves a URL or path from the collection logic, refusing any origin but the org's own. */
  resolve(urlOrPath: string): URL {
    let url: URL;
    try {
      url = new URL(urlOrPath, this.origin);
    } catch (err) {
      throw new OktailError(
        'ORIGIN_MISMATCH',
        `Not a valid request URL: ${JSON.stringify(urlOrPath)}`,
        false,
        {
          cause: err,
        },
      );
    }
    if (url.origin !== this.origin) {
      throw new OktailError(
        'ORIGIN_MISMATCH',
        `Refusing to request ${url.origin}: it is not the configured org ${this.origin}; ` +
          'the API token is only ever sent to the configured org',
      );
    }
    return url;
  }

  /** `buffer`: which of the two body buffers a 200 body is read into (see `FetchedPage.body`). */
  async fetch(url: URL, signal: AbortSignal, buffer: 0 | 1 = 0): Promise<FetchedPage> {
    if (url.origin !== this.origin) throw this.#foreign(url);
    for (let attempt = 0; ; attempt++) {
      const authHeaders = await this.auth.headers('GET', url, signal);
      await this.#beforeRequest?.();
      const started = performance.now();
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          method: 'GET',
          dispatcher: this.#dispatcher,
          signal,
          headersTimeout: this.#timeoutMs,
          bodyTimeout: this.#timeoutMs,
          headers: {
            accept: 'application/json',
            'user-agent': this.#userAgent,
            ...authHeaders,
          },
        });
      } catch (err) {
        if (signal.aborted) throw err;
        throw this.#transportError(err);
      }
      const receivedAtMs = Date.now();
      const headers = flattenHeaders(res.headers);
      const again = this.auth.afterResponse(res.statusCode, headers);
      let body: Buffer;
      try {
        body =
          res.statusCode === 200
            ? await this.#readBody(res.body, headers['content-length'], buffer)
            : await readCapped(res.body);
      } catch (err) {
        if (signal.aborted) throw err;
        throw this.#transportError(err, res.statusCode);
      }
      if (res.statusCode !== 200 && again === 'retry' && attempt < MAX_AUTH_RETRIES) continue;
      const page: FetchedPage = {
        url: url.href,
        status: res.statusCode,
        headers,
        body,
        receivedAtMs,
        ms: performance.now() - started,
      };
      if (res.statusCode !== 200) throw classifyFailure(page, this.auth.checkHint);
      return page;
    }
  }

  /** A POST to the org (the OAuth token endpoint), through the same connection, TLS settings and proxy. */
  async post(
    url: URL,
    headers: Record<string, string>,
    body: string,
    signal: AbortSignal,
  ): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
    if (url.origin !== this.origin) throw this.#foreign(url);
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.#dispatcher,
        signal,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        headers: { 'user-agent': this.#userAgent, ...headers },
        body,
      });
      return {
        status: res.statusCode,
        headers: flattenHeaders(res.headers),
        body: await readCapped(res.body),
      };
    } catch (err) {
      if (signal.aborted) throw err;
      throw this.#transportError(err);
    }
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  async #readBody(
    body: Dispatcher.ResponseData['body'],
    contentLength: string | undefined,
    slot: 0 | 1,
  ): Promise<Buffer> {
    let buffer = this.#bodyBuffers[slot];
    const expected = contentLength === undefined ? NaN : Number(contentLength);
    if (Number.isSafeInteger(expected) && expected > buffer.length) buffer = grown(buffer, 0, expected);
    let size = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (size + chunk.length > buffer.length) buffer = grown(buffer, size, size + chunk.length);
      chunk.copy(buffer, size);
      size += chunk.length;
    }
    this.#bodyBuffers[slot] = buffer;
    return buffer.subarray(0, size);
  }

  #transportError(err: unknown, status?: number): OktailError {
    const atProxy = this.proxy === null ? null : describeProxyFailure(err, this.proxy);
    if (atProxy === null) return transportError(err, status);
    if (!atProxy.retryable) return new OktailError('PROXY_AUTH', atProxy.message, false, { cause: err });
    return new OktaResponseError(
      'OKTA_FETCH_FAILED',
      `Failed to fetch Okta system logs. Status=none (${atProxy.message})`,
      true,
      null,
      {},
      {},
      err,
    );
  }

  #foreign(url: URL): OktailError {
    return new OktailError(
      'ORIGIN_MISMATCH',
      `Refusing to request ${url.origin}: not the configured org ${this.origin}`,
    );
  }
}

function flattenHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** A larger buffer holding the first `used` bytes of `buffer`. */
function grown(buffer: Buffer, used: number, needed: number): Buffer {
  const next = Buffer.from(
    new SharedArrayBuffer(Math.max(MIN_BODY_BUFFER, needed, Math.ceil(buffer.length * 1.5))),
  );
  buffer.copy(next, 0, 0, used);
  return next;
}

async function readCapped(body: Dispatcher.ResponseData['body']): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size < MAX_ERROR_BODY) chunks.push(chunk);
    size += chunk.length;
  }
  return Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY);
}

/** Okta's JSON error fields, when the body has them; only `errorCode` is stable. */
export interface OktaErrorBody {
  errorCode?: string;
  errorSummary?: string;
  errorId?: string;
  /** Each `errorCauses[].errorSummary`: for a 400, usually the part that says which parameter is wrong. */
  errorCauses?: string[];
}

export function parseOktaError(body: Buffer): OktaErrorBody {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (parsed === null || typeof parsed !== 'object') return {};
    const o = parsed as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' ? v.slice(0, 500) : undefined);
    const causes = Array.isArray(o.errorCauses)
      ? o.errorCauses
          .slice(0, 10)
          .map((c: unknown) => str((c as Record<string, unknown> | null)?.errorSummary))
          .filter((c): c is string => c !== undefined && c !== '')
      : [];
    return {
      errorCode: str(o.errorCode),
      errorSummary: str(o.errorSummary),
      errorId: str(o.errorId),
      ...(causes.length > 0 ? { errorCauses: causes } : {}),
    };
  } catch {
    return {};
  }
}

function withOktaDetails(message: string, body: OktaErrorBody): string {
  const parts: string[] = [];
  if (body.errorCode) parts.push(`errorCode=${body.errorCode}`);
  if (body.errorSummary) parts.push(`errorSummary=${JSON.stringify(body.errorSummary)}`);
  if (body.errorCauses) parts.push(`errorCauses=${JSON.stringify(body.errorCauses)}`);
  if (body.errorId) parts.push(`errorId=${body.errorId}`);
  return parts.length === 0 ? message : `${message} (${parts.join(', ')})`;
}

/** Fields attached to errors from a response, for retry decisions and diagnostics. */
export class OktaResponseError extends OktailError {
  constructor(
    code: 'OKTA_BAD_REQUEST' | 'OKTA_AUTH' | 'OKTA_RATE_LIMITED' | 'OKTA_FETCH_FAILED',
    message: string,
    retryable: boolean,
    readonly status: number | null,
    readonly okta: OktaErrorBody,
    readonly headers: Record<string, string>,
    cause?: unknown,
  ) {
    super(code, message, retryable, { cause });
  }
}

/** `checkHint` names what to check on a 401/403: the token, or the OAuth app. */
export function classifyFailure(page: FetchedPage, checkHint = 'OKTA_API_TOKEN'): OktaResponseError {
  const okta = parseOktaError(page.body);
  const { status, headers } = page;
  if (status === 400) {
    return new OktaResponseError(
      'OKTA_BAD_REQUEST',
      withOktaDetails('Bad request - check API parameters', okta),
      false,
      status,
      okta,
      headers,
    );
  }
  if (status === 401 || status === 403) {
    return new OktaResponseError(
      'OKTA_AUTH',
      withOktaDetails(`Authentication failed - check ${checkHint}`, okta),
      false,
      status,
      okta,
      headers,
    );
  }
  if (status === 429) {
    return new OktaResponseError(
      'OKTA_RATE_LIMITED',
      withOktaDetails('Rate limit exceeded - will retry', okta),
      true,
      status,
      okta,
      headers,
    );
  }
  return new OktaResponseError(
    'OKTA_FETCH_FAILED',
    withOktaDetails(`Failed to fetch Okta system logs. Status=${status}`, okta),
    true,
    status,
    okta,
    headers,
  );
}

/** Connection, TLS and timeout failures: retryable, with the transport's own reason after the status. */
export function transportError(err: unknown, status?: number): OktaResponseError {
  const code = (err as { code?: unknown }).code;
  const reason = typeof code === 'string' ? `${code}: ${errorMessage(err)}` : errorMessage(err);
  return new OktaResponseError(
    'OKTA_FETCH_FAILED',
    `Failed to fetch Okta system logs. Status=${status ?? 'none'} (${reason})`,
    true,
    status ?? null,
    {},
    {},
    err,
  );
}
