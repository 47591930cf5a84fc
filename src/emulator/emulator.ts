import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { generateEvents, type EventRecord, type GenerateOptions } from './events.js';
import { parseFilter, parseKeywords, type EventPredicate } from './filter.js';
import { OAuthServer, type OAuthEmulatorOptions } from './oauth.js';
import { createRandom, type Random } from './random.js';

export interface EmulatorTlsOptions {
  cert: string;
  key: string;
  /** CA that client certificates must chain to when `requireClientCert` is set. */
  ca?: string;
  /** mTLS: refuse the handshake unless the client presents a certificate signed by `ca`. */
  requireClientCert?: boolean;
}

export interface RateLimitOptions {
  /** Requests per window for the whole org, shared by every token. */
  limit: number;
  /** Fixed window length, aligned to the server clock. Default 60000 (Okta's per-minute buckets). */
  windowMs?: number;
}

export interface EmulatorOptions {
  tls: EmulatorTlsOptions;
  /** Valid API tokens, sent as `Authorization: SSWS <token>`. */
  tokens: string[];
  /** Loopback only. `localhost` changes the origin and links; the socket still binds 127.0.0.1. */
  host?: '127.0.0.1' | 'localhost' | '::1';
  /** Default 0: any free port. */
  port?: number;
  /** `null` or absent: never limited, but the headers still show a large limit. */
  rateLimit?: RateLimitOptions | null;
  /** The server clock is the local clock plus this; it drives `Date`, `X-Rate-Limit-Reset` and "now". */
  clockSkewMs?: number;
  /** Delay before every response. */
  latencyMs?: number;
  /** More requests than this in flight at once get a 429 with `X-Rate-Limit-Limit: 0`. Default: none. */
  concurrencyLimit?: number;
  /** Largest accepted `limit` parameter. Default 1000. */
  maxLimit?: number;
  /**
   * Okta sends `self` and `next` as two `Link` header lines; `combined` joins them into one line with a
   * comma, which HTTP treats as equivalent. Default `separate`.
   */
  linkHeader?: 'separate' | 'combined';
  /** Idle keep-alive connections are closed after this. Default 65000, longer than clients usually wait. */
  keepAliveTimeoutMs?: number;
  /** OAuth 2.0 service apps: the token endpoint and access-token (DPoP) checks on API calls. */
  oauth?: OAuthEmulatorOptions;
}

export interface EmulatorAddress {
  port: number;
  /** e.g. `https://127.0.0.1:8443` */
  origin: string;
  /** What a collector is configured with, e.g. `127.0.0.1:8443`. */
  domain: string;
}

export type Fault =
  /**
   * An Okta-style error response with this status; 429 also shows `Remaining: 0` and the real reset.
   * `errorCauses` become the body's `errorCauses[].errorSummary`, as Okta details a 400.
   */
  | { kind: 'status'; status: number; errorCode?: string; errorCauses?: string[] }
  /** The connection is destroyed without any response. */
  | { kind: 'reset' }
  /** Headers announce the full Content-Length, half the body follows, then the connection is destroyed. */
  | { kind: 'truncate-close' }
  /** A complete 200 response whose body stops in the middle of an event. */
  | { kind: 'truncate-json' }
  /** A 200 HTML page, as a proxy or maintenance page would send. */
  | { kind: 'not-json' }
  /** A 200 JSON object instead of an array. */
  | { kind: 'not-array' }
  /** The normal response, sent `ms` late. */
  | { kind: 'delay'; ms: number }
  /** The normal page, but `rel="next"` points at another origin. */
  | { kind: 'foreign-next'; origin?: string }
  /** A 200 empty array whose next link stays where the request was. */
  | { kind: 'empty-page' };

export type FaultKind = Fault['kind'];

/** Requests held by `holdFrom`, for a test to release one by one. */
export interface RequestHold {
  /** Requests held so far (released ones included). */
  held(): number;
  /** Resolves once `count` requests have been held; rejects after `timeoutMs` (default 60 s). */
  arrived(count: number, timeoutMs?: number): Promise<void>;
  /** Lets the oldest held request be answered. */
  releaseOne(): void;
  /** Releases every held request and holds no more. */
  end(): void;
}

export interface RandomFaultOptions {
  /** Chance that a request without a queued fault gets one. */
  probability: number;
  /** Faults to choose from, uniformly. */
  kinds: Fault[];
  seed?: number;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  /** Query parameters as received (the last one wins when repeated). */
  query: Record<string, string>;
  /** `null` when no status line was sent (the connection was dropped). */
  status: number | null;
  fault?: FaultKind;
  /** Which configured token authenticated the request; `null` when none did. Tokens are never recorded. */
  tokenIndex: number | null;
  /** The OAuth client whose access token authenticated the request, if one did. */
  oauthClient?: string;
  /** Local clock, epoch ms, when the request arrived. */
  at: number;
  /** When the response finished or the connection closed (null while in flight). */
  endedAt: number | null;
  /** The client's User-Agent: a replica names its node there, so a test can tell who polled when. */
  userAgent: string | null;
  /** Events in the body when a full page was sent. */
  events: number;
}

export interface EmulatorStats {
  requests: number;
  byStatus: Record<string, number>;
  /** All 429s, whether from the bucket, the concurrency limit or a fault. */
  rateLimited: number;
  concurrencyLimited: number;
  /** Events in complete 200 pages. */
  eventsServed: number;
  faultsApplied: number;
  /** Handshakes the server refused (e.g. no client certificate under mTLS). */
  tlsErrors: number;
}

export interface StoredEvent extends EventRecord {
  /** Persistence sequence number, from 1, in the order events were appended. */
  readonly seq: number;
  /** Server-clock epoch ms at which the event became visible to polling. */
  readonly persistedAt: number;
}

export interface AppendOptions {
  /** Server-clock epoch ms; default server-now. Must not go back before earlier appends. */
  persistedAt?: number;
}

const DAY_MS = 24 * 3600_000;
const DEFAULT_LIMIT = 100;
const UNLIMITED = 1_000_000;
const MAX_LOG = 100_000;

const ERROR_SUMMARIES: Record<string, string> = {
  E0000001: 'Api validation failed',
  E0000006: 'You do not have permission to perform the requested action',
  E0000007: 'Not found: Resource not found',
  E0000009: 'Internal Server Error',
  E0000011: 'Invalid token provided',
  E0000022: 'The endpoint does not support the provided HTTP method',
  E0000029: 'Invalid paging request.',
  E0000030:
    "Bad request. Invalid date. Dates must be of the form yyyy-MM-dd'T'HH:mm:ss.SSSZZ, e.g. 2013-01-01T12:00:00.000-07:00.",
  E0000047: 'API call exceeded rate limit due to too many requests.',
  E0000053: 'Invalid date. The since parameter must be within the last 180 days.',
};

const CODE_FOR_STATUS: Record<number, string> = {
  400: 'E0000001',
  401: 'E0000011',
  403: 'E0000006',
  404: 'E0000007',
  405: 'E0000022',
  429: 'E0000047',
};

const HTML_PAGE = Buffer.from(
  '<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>' +
    '<body><h1>We are performing scheduled maintenance</h1><p>Please try again shortly.</p></body></html>\n',
);

/** A request the emulator answers with an Okta error instead of a page. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail?: string,
  ) {
    super(code);
  }
}

/** A parsed ISO 8601 instant, strict about the calendar: `Date.parse` would roll 2017-09-31 into October. */
function parseInstant(text: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$/.exec(
    text,
  );
  if (m === null) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return null;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return null;
  let ms = Date.UTC(
    year,
    month - 1,
    day,
    Number(h),
    Number(mi),
    Number(s),
    Number((frac ?? '0').padEnd(3, '0').slice(0, 3)),
  );
  if (zone !== 'Z' && zone !== undefined) {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
  }
  return ms;
}

function randomId(prefix: string, length: number): string {
  return prefix + randomBytes(length).toString('base64url').slice(0, length);
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Parsed `after` cursor. Polling cursors are `${persistedAtMs}_${seq}`; bounded ones add the lower bound. */
type Cursor =
  { kind: 'poll'; ms: number; seq: number } | { kind: 'bounded'; ms: number; seq: number; sinceMs: number };

function parseCursor(text: string): Cursor | null {
  let m = /^(-?\d{1,15})_(\d{1,10})$/.exec(text);
  if (m !== null) return { kind: 'poll', ms: Number(m[1]), seq: Number(m[2]) };
  m = /^(-?\d{1,15})_(\d{1,10})_(-?\d{1,15})$/.exec(text);
  if (m !== null) return { kind: 'bounded', ms: Number(m[1]), seq: Number(m[2]), sinceMs: Number(m[3]) };
  return null;
}

interface Page {
  /** Indexes into the store, in response order. */
  indexes: number[];
  /** Query string (without `?`) of the next link, or null when the request is exhausted. */
  nextQuery: string | null;
  /** Next link query that keeps the request where it is (for `empty-page`). */
  stayQuery: string | null;
}

/**
 * An HTTPS server on loopback that answers `GET /api/v1/logs` the way Okta does, including the parts
 * collectors get wrong: polling by persistence time, a next link on every polling page, an org-wide
 * rate-limit bucket read against the server's own clock, and injectable failures.
 */
export class OktaEmulator {
  private readonly options: EmulatorOptions;
  private server: Server | null = null;
  private address: EmulatorAddress | null = null;
  private stopping: Promise<void> | null = null;
  /** Every delayed answer waits on it, so it has as many listeners as requests are delayed at once. */
  private readonly lifetime = unlimitedListeners(new AbortController());
  /** The org authorization server, when `oauth` was given. */
  readonly oauth: OAuthServer | null;

  private tokenDigests: Buffer[];
  private clockSkewMs: number;
  private latencyMs: number;
  private rateLimit: RateLimitOptions | null;

  private readonly records: EventRecord[] = [];
  private readonly persistedAt: number[] = [];
  private publishedOrder: Int32Array | null = null;
  private publishedMonotonic = true;
  private readonly issuedCursors = new Set<string>();

  private windowStart = Number.NEGATIVE_INFINITY;
  private windowUsed = 0;
  /** Another client spending at a steady pace (see `spendSteadily`). */
  private steady: { everyMs: number; next: number; perWindow: Map<number, number> } | null = null;
  private inFlight = 0;

  private readonly faults: Fault[] = [];
  private random: { probability: number; kinds: Fault[]; rnd: Random } | null = null;

  private log: RequestLogEntry[] = [];
  private counters = OktaEmulator.emptyStats();
  private gate: {
    from: number;
    to: number;
    seen: number;
    held: (() => void)[];
    arrived: number;
    waiters: (() => void)[];
  } | null = null;

  constructor(options: EmulatorOptions) {
    const host = options.host ?? '127.0.0.1';
    if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
      throw new RangeError(`The emulator only listens on loopback, not on ${host}.`);
    }
    this.options = options;
    this.tokenDigests = options.tokens.map(digest);
    this.clockSkewMs = options.clockSkewMs ?? 0;
    this.latencyMs = options.latencyMs ?? 0;
    this.rateLimit = options.rateLimit ?? null;
    this.oauth = options.oauth ? new OAuthServer(options.oauth) : null;
  }

  private static emptyStats(): EmulatorStats {
    return {
      requests: 0,
      byStatus: {},
      rateLimited: 0,
      concurrencyLimited: 0,
      eventsServed: 0,
      faultsApplied: 0,
      tlsErrors: 0,
    };
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<EmulatorAddress> {
    if (this.address !== null) return this.address;
    if (this.stopping !== null) throw new Error('A stopped emulator cannot be started again.');
    const { tls } = this.options;
    const server = createServer({
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      requestCert: tls.requireClientCert === true,
      rejectUnauthorized: tls.requireClientCert === true,
      ALPNProtocols: ['http/1.1'],
      keepAlive: true,
    });
    server.keepAliveTimeout = this.options.keepAliveTimeoutMs ?? 65_000;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch(() => res.destroy());
    });
    server.on('tlsClientError', (_err, socket) => {
      this.counters.tlsErrors++;
      socket.destroy();
    });
    this.server = server;
    const host = this.options.host ?? '127.0.0.1';
    const bindHost = host === 'localhost' ? '127.0.0.1' : host;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, bindHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    const hostPart = host === '::1' ? '[::1]' : host;
    this.address = { port, origin: `https://${hostPart}:${port}`, domain: `${hostPart}:${port}` };
    return this.address;
  }

  /** Closes the listener and every connection, including keep-alive ones and requests still waiting. */
  async stop(): Promise<void> {
    this.stopping ??= this.close();
    return this.stopping;
  }

  private async close(): Promise<void> {
    this.lifetime.abort();
    const server = this.server;
    if (server === null) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  get origin(): string {
    if (this.address === null) throw new Error('The emulator has not been started.');
    return this.address.origin;
  }

  // ---------------------------------------------------------------- clock, tokens, knobs

  /** The server's clock, epoch ms. */
  now(): number {
    return Date.now() + this.clockSkewMs;
  }

  setClockSkew(ms: number): void {
    this.clockSkewMs = ms;
  }

  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  setTokens(tokens: string[]): void {
    this.tokenDigests = tokens.map(digest);
  }

  setRateLimit(rateLimit: RateLimitOptions | null): void {
    this.rateLimit = rateLimit;
    this.windowStart = Number.NEGATIVE_INFINITY;
  }

  // ---------------------------------------------------------------- events

  /** Stores events in persistence order. They are visible to the next request. */
  append(records: readonly EventRecord[], options: AppendOptions = {}): void {
    const last = this.persistedAt.length === 0 ? Number.NEGATIVE_INFINITY : this.persistedAt.at(-1)!;
    let at = options.persistedAt ?? Math.max(this.now(), last);
    if (at < last) {
      throw new RangeError(`persistedAt ${at} goes back before the last append (${last}).`);
    }
    at = Math.floor(at);
    let lastPublished =
      this.records.length === 0 ? Number.NEGATIVE_INFINITY : this.records.at(-1)!.publishedMs;
    for (const record of records) {
      if (record.publishedMs < lastPublished) this.publishedMonotonic = false;
      lastPublished = record.publishedMs;
      this.records.push(record);
      this.persistedAt.push(at);
    }
    this.publishedOrder = null;
  }

  /** Generates and stores events; returns them for comparison with what a collector writes. */
  appendEvents(count: number, options: GenerateOptions & AppendOptions = {}): EventRecord[] {
    const records = generateEvents(count, options);
    this.append(records, options);
    return records;
  }

  get eventCount(): number {
    return this.records.length;
  }

  /** Every stored event in persistence order. */
  allEvents(): StoredEvent[] {
    return this.records.map((r, i) => ({ ...r, seq: i + 1, persistedAt: this.persistedAt[i]! }));
  }

  // ---------------------------------------------------------------- rate limit

  private bucket(): { limit: number; remaining: number; resetSecs: number } {
    const now = this.now();
    const windowMs = this.rateLimit?.windowMs ?? 60_000;
    if (now >= this.windowStart + windowMs || now < this.windowStart) {
      this.windowStart = Math.floor(now / windowMs) * windowMs;
      this.windowUsed = 0;
    }
    this.chargeSteady(now, windowMs);
    const limit = this.rateLimit?.limit ?? UNLIMITED;
    return {
      limit,
      remaining: Math.max(0, limit - this.windowUsed),
      resetSecs: Math.ceil((this.windowStart + windowMs) / 1000),
    };
  }

  /** Simulates other clients of the org spending `n` requests of the current window. */
  consume(n: number): void {
    this.bucket();
    this.windowUsed += n;
  }

  /**
   * Simulates another client of the org spending one request every `everyMs` of the server's clock, at
   * `phaseMs` into each period. Its requests are charged whenever the bucket is read, each to the window
   * its instant falls in, so its pace is exact however late a busy machine runs the test's timers (a
   * timer that fired late moved a request into the next window). Returns its requests per window, keyed
   * by `Math.floor(instant / windowMs)`, and a function that stops it.
   */
  spendSteadily(everyMs: number, phaseMs = everyMs / 2): { perWindow: Map<number, number>; stop(): void } {
    if (!(everyMs > 0)) throw new RangeError(`everyMs must be positive, not ${everyMs}`);
    const now = this.now();
    const next = (Math.floor((now - phaseMs) / everyMs) + 1) * everyMs + phaseMs;
    const steady = { everyMs, next, perWindow: new Map<number, number>() };
    this.steady = steady;
    return {
      perWindow: steady.perWindow,
      stop: () => {
        this.bucket();
        if (this.steady === steady) this.steady = null;
      },
    };
  }

  /** Charges the steady client's requests due by `now`; those of windows already over only count. */
  private chargeSteady(now: number, windowMs: number): void {
    const steady = this.steady;
    if (steady === null) return;
    for (; steady.next <= now; steady.next += steady.everyMs) {
      const window = Math.floor(steady.next / windowMs);
      steady.perWindow.set(window, (steady.perWindow.get(window) ?? 0) + 1);
      if (steady.next >= this.windowStart) this.windowUsed++;
    }
  }

  // ---------------------------------------------------------------- faults

  /** Queues faults; each applies to one authenticated request that got past the rate limit, in order. */
  injectFaults(faults: Fault[]): void {
    this.faults.push(...faults);
  }

  /** Faults for requests with none queued, chosen at random; `null` turns them off. */
  randomFaults(options: RandomFaultOptions | null): void {
    this.random =
      options === null || options.kinds.length === 0
        ? null
        : { probability: options.probability, kinds: options.kinds, rnd: createRandom(options.seed) };
  }

  get pendingFaults(): number {
    return this.faults.length;
  }

  clearFaults(): void {
    this.faults.length = 0;
    this.random = null;
  }

  private takeFault(): Fault | undefined {
    const queued = this.faults.shift();
    if (queued !== undefined) return queued;
    if (this.random !== null && this.random.rnd.next() < this.random.probability) {
      return this.random.rnd.pick(this.random.kinds);
    }
    return undefined;
  }

  // ---------------------------------------------------------------- holding requests

  /**
   * Holds the `nth` request from now (1 = the next one) and the `count - 1` after it (default: every
   * one after it), unanswered, until the test releases them. A client waiting for a held answer is at a
   * known point of its work whatever the machine's speed: tests act on that instead of on a timer.
   */
  holdFrom(nth: number, count = Infinity): RequestHold {
    this.releaseHeld();
    const gate = {
      from: nth,
      to: nth + count,
      seen: 0,
      held: [] as (() => void)[],
      arrived: 0,
      waiters: [] as (() => void)[],
    };
    this.gate = gate;
    return {
      held: () => gate.arrived,
      arrived: async (wanted, timeoutMs = 60_000) => {
        if (gate.arrived >= wanted) return;
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () =>
              reject(
                new Error(
                  `${wanted} held requests did not arrive within ${timeoutMs} ms (${gate.arrived} did)`,
                ),
              ),
            timeoutMs,
          );
          const check = (): void => {
            if (gate.arrived < wanted) return;
            clearTimeout(timer);
            gate.waiters = gate.waiters.filter((w) => w !== check);
            resolve();
          };
          gate.waiters.push(check);
        });
      },
      releaseOne: () => gate.held.shift()?.(),
      end: () => {
        if (this.gate === gate) this.releaseHeld();
      },
    };
  }

  private releaseHeld(): void {
    const gate = this.gate;
    this.gate = null;
    for (const release of gate?.held.splice(0) ?? []) release();
  }

  /** Resolves at once unless a hold covers this request; then when the test releases it. */
  private async passGate(): Promise<void> {
    const gate = this.gate;
    if (gate === null) return;
    gate.seen++;
    if (gate.seen < gate.from || gate.seen >= gate.to) return;
    const signal = this.lifetime.signal;
    await new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(new Error('stopped'));
      signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true });
      gate.held.push(resolve);
      gate.arrived++;
      for (const waiter of [...gate.waiters]) waiter();
    });
  }

  // ---------------------------------------------------------------- observability

  /** The most recent requests (up to 100,000), oldest first. */
  get requests(): readonly RequestLogEntry[] {
    return this.log;
  }

  stats(): EmulatorStats {
    return { ...this.counters, byStatus: { ...this.counters.byStatus } };
  }

  resetStats(): void {
    this.log = [];
    this.counters = OktaEmulator.emptyStats();
  }

  // ---------------------------------------------------------------- request handling

  private async sleep(ms: number): Promise<void> {
    if (ms <= 0) return;
    const signal = this.lifetime.signal;
    await new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(new Error('stopped'));
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(new Error('stopped'));
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const entry: RequestLogEntry = {
      method: req.method ?? 'GET',
      path: '',
      query: {},
      status: null,
      tokenIndex: null,
      at: Date.now(),
      endedAt: null,
      userAgent: req.headers['user-agent'] ?? null,
      events: 0,
    };
    this.inFlight++;
    res.once('close', () => {
      this.inFlight--;
      entry.endedAt = Date.now();
    });
    res.on('error', () => undefined);
    const overConcurrency =
      this.options.concurrencyLimit !== undefined && this.inFlight > this.options.concurrencyLimit;
    this.counters.requests++;
    // Bounded so that a demo left running for days does not grow without end; counters stay exact.
    if (this.log.length >= MAX_LOG) this.log.splice(0, MAX_LOG / 2);
    this.log.push(entry);

    let url: URL;
    try {
      url = new URL(this.origin + (req.url ?? '/'));
    } catch {
      url = new URL(this.origin + '/');
    }
    entry.path = url.pathname;
    entry.query = Object.fromEntries(url.searchParams);

    try {
      await this.passGate();
      await this.sleep(this.latencyMs);
      await this.respond(req, res, url, entry, overConcurrency);
    } catch (err) {
      if (err instanceof HttpError) {
        this.sendError(res, entry, err.status, err.code, err.detail);
      } else {
        // Stopping, or a bug: either way no half-written response may look like a valid one.
        res.destroy();
      }
    }
  }

  private async respond(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    entry: RequestLogEntry,
    overConcurrency: boolean,
  ): Promise<void> {
    if (url.pathname === '/oauth2/v1/token' && this.oauth !== null) {
      if (entry.method !== 'POST') throw new HttpError(405, 'E0000022');
      const form = new URLSearchParams(await readText(req));
      const answer = await this.oauth.token(
        form,
        req.headers as Record<string, string>,
        url.origin + url.pathname,
        Date.now(),
      );
      this.sendJson(res, entry, answer.status, answer.body, answer.headers);
      return;
    }
    if (url.pathname !== '/api/v1/logs') {
      throw new HttpError(
        404,
        'E0000007',
        `Not found: Resource not found: ${url.pathname} (${entry.method})`,
      );
    }
    if (entry.method !== 'GET') throw new HttpError(405, 'E0000022');

    const authorization = req.headers.authorization;
    let extraHeaders: OutgoingHttpHeaders = {};
    if (this.oauth !== null && authorization !== undefined && /^(Bearer|DPoP) /i.test(authorization)) {
      const check = await this.oauth.checkApi(
        entry.method,
        url,
        req.headers as Record<string, string>,
        Date.now(),
      );
      if (!check.ok) {
        this.sendJson(res, entry, check.status, check.body, check.headers);
        return;
      }
      entry.oauthClient = check.clientId;
      extraHeaders = check.headers;
    } else {
      entry.tokenIndex = this.authenticate(authorization);
      if (entry.tokenIndex === null) {
        this.sendJson(res, entry, 401, this.errorBody('E0000011', undefined, []), {});
        return;
      }
    }

    if (overConcurrency) {
      this.counters.concurrencyLimited++;
      const { resetSecs } = this.bucket();
      this.sendJson(res, entry, 429, this.errorBody('E0000047'), {}, { limit: 0, remaining: 0, resetSecs });
      return;
    }
    const bucket = this.bucket();
    if (bucket.remaining <= 0 && this.rateLimit !== null) {
      this.sendJson(res, entry, 429, this.errorBody('E0000047'), {});
      return;
    }
    this.windowUsed++;

    const fault = this.takeFault();
    if (fault !== undefined) {
      entry.fault = fault.kind;
      this.counters.faultsApplied++;
    }
    switch (fault?.kind) {
      case 'reset':
        res.destroy();
        req.socket.destroy();
        return;
      case 'status': {
        const code = fault.errorCode ?? CODE_FOR_STATUS[fault.status] ?? 'E0000009';
        const override = fault.status === 429 ? { ...this.bucket(), remaining: 0 } : undefined;
        const causes = fault.errorCauses?.map((errorSummary) => ({ errorSummary }));
        this.sendJson(res, entry, fault.status, this.errorBody(code, undefined, causes), {}, override);
        return;
      }
      case 'delay':
        await this.sleep(fault.ms);
        if (res.destroyed) return;
        break;
      default:
        break;
    }

    const page = this.buildPage(url);
    const links: string[] = [`<${url.href}>; rel="self"`];
    const nextQuery = fault?.kind === 'empty-page' ? page.stayQuery : page.nextQuery;
    if (nextQuery !== null) {
      const origin =
        fault?.kind === 'foreign-next' ? (fault.origin ?? 'https://attacker.example') : this.origin;
      links.push(`<${origin}/api/v1/logs?${nextQuery}>; rel="next"`);
    }
    const linkHeader = this.options.linkHeader === 'combined' ? links.join(', ') : links;

    switch (fault?.kind) {
      case 'empty-page':
        this.sendBody(res, entry, 200, Buffer.from('[]'), 'application/json', { Link: linkHeader });
        return;
      case 'not-json':
        this.sendBody(res, entry, 200, HTML_PAGE, 'text/html; charset=utf-8', {});
        return;
      case 'not-array': {
        const body = Buffer.from('{"status":"ok","events":"see next page"}');
        this.sendBody(res, entry, 200, body, 'application/json', { Link: linkHeader });
        return;
      }
      case 'truncate-json': {
        const { body, cut } = this.renderPage(page.indexes);
        // With no event to cut, a page that broke off inside its first event looks the same to a client.
        const partial =
          cut < 0 ? Buffer.from('[{"actor":{"id":"00u1qw1mqitPHM8AJ0g7","type":"Us') : body.subarray(0, cut);
        this.sendBody(res, entry, 200, partial, 'application/json', { Link: linkHeader });
        return;
      }
      case 'truncate-close': {
        const { body } = this.renderPage(page.indexes);
        this.writeHead(res, entry, 200, 'application/json', body.length, { Link: linkHeader });
        res.write(body.subarray(0, Math.floor(body.length / 2)), () => req.socket.destroy());
        return;
      }
      default: {
        const { body } = this.renderPage(page.indexes);
        entry.events = page.indexes.length;
        this.counters.eventsServed += page.indexes.length;
        this.sendBody(res, entry, 200, body, 'application/json', { Link: linkHeader, ...extraHeaders });
      }
    }
  }

  private authenticate(header: string | undefined): number | null {
    const m = header === undefined ? null : /^SSWS +(\S+)\s*$/.exec(header);
    if (m === null) return null;
    const presented = digest(m[1]!);
    for (let i = 0; i < this.tokenDigests.length; i++) {
      if (timingSafeEqual(presented, this.tokenDigests[i]!)) return i;
    }
    return null;
  }

  // ---------------------------------------------------------------- pages

  private buildPage(url: URL): Page {
    const params = url.searchParams;
    const maxLimit = this.options.maxLimit ?? 1000;
    const limitText = params.get('limit');
    let limit = DEFAULT_LIMIT;
    if (limitText !== null) {
      if (!/^\d{1,9}$/.test(limitText) || Number(limitText) > maxLimit) {
        throw new HttpError(400, 'E0000001', `limit: must be an integer between 0 and ${maxLimit}`);
      }
      limit = Number(limitText);
    }
    const sinceText = params.get('since');
    const untilText = params.get('until');
    const sinceMs = sinceText === null ? null : parseInstant(sinceText);
    const untilMs = untilText === null ? null : parseInstant(untilText);
    if (sinceText !== null && sinceMs === null) throw new HttpError(400, 'E0000030');
    if (untilText !== null && untilMs === null) throw new HttpError(400, 'E0000030');
    const now = this.now();
    if (sinceMs !== null && sinceMs < now - 180 * DAY_MS) throw new HttpError(400, 'E0000053');
    const afterText = params.get('after');
    if (afterText !== null && sinceText !== null) {
      throw new HttpError(400, 'E0000001', 'after: cannot be combined with since');
    }
    const sortOrder = params.get('sortOrder') ?? 'ASCENDING';
    if (sortOrder !== 'ASCENDING' && sortOrder !== 'DESCENDING') {
      throw new HttpError(400, 'E0000001', 'sortOrder: must be ASCENDING or DESCENDING');
    }

    const predicates: EventPredicate[] = [];
    const carried: string[] = [];
    const filterText = params.get('filter');
    if (filterText !== null) {
      const predicate = parseFilter(filterText);
      if (predicate === null) throw new HttpError(400, 'E0000001', `filter: invalid expression`);
      predicates.push(predicate);
      carried.push(`filter=${encodeURIComponent(filterText)}`);
    }
    const qText = params.get('q');
    if (qText !== null) {
      const predicate = parseKeywords(qText);
      if (predicate === null) {
        throw new HttpError(400, 'E0000001', 'q: at most 10 keywords of at most 40 characters');
      }
      predicates.push(predicate);
      carried.push(`q=${encodeURIComponent(qText)}`);
    }
    const matches = (i: number): boolean => predicates.every((p) => p(this.records[i]!));

    const polling = untilText === null && sortOrder === 'ASCENDING';
    let cursor: Cursor | null = null;
    if (afterText !== null) {
      cursor = parseCursor(afterText);
      if (cursor === null || !this.issuedCursors.has(afterText) || (cursor.kind === 'poll') !== polling) {
        throw new HttpError(400, 'E0000029');
      }
    }
    const prefix = [`limit=${limit}`, `sortOrder=${sortOrder}`, ...carried].join('&');
    const issue = (c: string): string => {
      this.issuedCursors.add(c);
      return c;
    };

    if (polling) {
      const fromMs = cursor?.ms ?? sinceMs ?? now - 7 * DAY_MS;
      const start = Math.max(cursor?.seq ?? 0, lowerBound(this.persistedAt, fromMs));
      const indexes: number[] = [];
      for (let i = start; i < this.records.length && indexes.length < limit; i++) {
        if (matches(i)) indexes.push(i);
      }
      const here = afterText ?? `${fromMs}_${start}`;
      const last = indexes.at(-1);
      const next = last === undefined ? here : `${this.persistedAt[last]}_${last + 1}`;
      return {
        indexes,
        nextQuery: `${prefix}&after=${issue(next)}`,
        stayQuery: `${prefix}&after=${issue(here)}`,
      };
    }

    // Bounded (or descending) request: by `published`, finite, a next link only while events remain.
    const until = untilMs ?? now;
    const since = cursor?.kind === 'bounded' ? cursor.sinceMs : (sinceMs ?? until - 7 * DAY_MS);
    const order = this.byPublished();
    const key = (k: number): [number, number] => [this.records[order[k]!]!.publishedMs, order[k]! + 1];
    const before = (k: number, ms: number, seq: number): boolean => {
      const [p, s] = key(k);
      return p < ms || (p === ms && s <= seq);
    };
    const indexes: number[] = [];
    let more = false;
    let hereMs: number;
    let hereSeq: number;
    if (sortOrder === 'ASCENDING') {
      [hereMs, hereSeq] = cursor === null ? [since, 0] : [cursor.ms, cursor.seq];
      for (let k = partition(order.length, (k) => before(k, hereMs, hereSeq)); k < order.length; k++) {
        if (key(k)[0] >= until) break;
        if (!matches(order[k]!)) continue;
        if (indexes.length === limit) {
          more = true;
          break;
        }
        indexes.push(order[k]!);
      }
    } else {
      [hereMs, hereSeq] = cursor === null ? [until, 0] : [cursor.ms, cursor.seq];
      const end = partition(order.length, (k) => before(k, hereMs, hereSeq - 1));
      for (let k = end - 1; k >= 0; k--) {
        if (key(k)[0] < since) break;
        if (!matches(order[k]!)) continue;
        if (indexes.length === limit) {
          more = true;
          break;
        }
        indexes.push(order[k]!);
      }
    }
    const untilParam = `until=${encodeURIComponent(untilText ?? new Date(until).toISOString())}`;
    const boundedQuery = (ms: number, seq: number): string =>
      `${prefix}&${untilParam}&after=${issue(`${ms}_${seq}_${since}`)}`;
    const last = indexes.at(-1);
    const here =
      afterText !== null ? `${prefix}&${untilParam}&after=${afterText}` : boundedQuery(hereMs, hereSeq);
    return {
      indexes,
      nextQuery: !more
        ? null
        : last === undefined
          ? here
          : boundedQuery(this.records[last]!.publishedMs, last + 1),
      stayQuery: here,
    };
  }

  /** Store indexes sorted by (published, seq); the identity while events arrived in `published` order. */
  private byPublished(): Int32Array {
    if (this.publishedOrder !== null && this.publishedOrder.length === this.records.length) {
      return this.publishedOrder;
    }
    const order = new Int32Array(this.records.length);
    for (let i = 0; i < order.length; i++) order[i] = i;
    if (!this.publishedMonotonic) {
      order.sort((a, b) => this.records[a]!.publishedMs - this.records[b]!.publishedMs || a - b);
    }
    this.publishedOrder = order;
    return order;
  }

  /** `[e1,e2,...]` by copying the stored bytes; `cut` falls in the middle of the middle event (-1 if none). */
  private renderPage(indexes: number[]): { body: Buffer; cut: number } {
    let length = 2 + Math.max(0, indexes.length - 1);
    for (const i of indexes) length += this.records[i]!.raw.length;
    const body = Buffer.allocUnsafe(length);
    body[0] = 0x5b; // [
    let at = 1;
    let cut = -1;
    const middle = Math.floor(indexes.length / 2);
    for (let k = 0; k < indexes.length; k++) {
      if (k > 0) body[at++] = 0x2c; // ,
      const raw = this.records[indexes[k]!]!.raw;
      if (k === middle) cut = at + Math.max(1, Math.floor(raw.length / 2));
      body.set(raw, at);
      at += raw.length;
    }
    body[at] = 0x5d; // ]
    return { body, cut };
  }

  // ---------------------------------------------------------------- responses

  private errorBody(code: string, cause?: string, causes?: { errorSummary: string }[]): Buffer {
    return Buffer.from(
      JSON.stringify({
        errorCode: code,
        errorSummary: ERROR_SUMMARIES[code] ?? 'Error',
        errorLink: code,
        errorId: randomId('oae', 22),
        errorCauses: causes ?? (cause === undefined ? [] : [{ errorSummary: cause }]),
      }),
    );
  }

  private sendError(
    res: ServerResponse,
    entry: RequestLogEntry,
    status: number,
    code: string,
    cause?: string,
  ): void {
    this.sendJson(res, entry, status, this.errorBody(code, cause), {});
  }

  private sendJson(
    res: ServerResponse,
    entry: RequestLogEntry,
    status: number,
    body: Buffer,
    headers: OutgoingHttpHeaders,
    rate?: { limit: number; remaining: number; resetSecs: number },
  ): void {
    this.sendBody(res, entry, status, body, 'application/json', headers, rate);
  }

  private sendBody(
    res: ServerResponse,
    entry: RequestLogEntry,
    status: number,
    body: Buffer,
    contentType: string,
    headers: OutgoingHttpHeaders,
    rate?: { limit: number; remaining: number; resetSecs: number },
  ): void {
    if (res.destroyed) return;
    this.writeHead(res, entry, status, contentType, body.length, headers, rate);
    res.end(body);
  }

  private writeHead(
    res: ServerResponse,
    entry: RequestLogEntry,
    status: number,
    contentType: string,
    contentLength: number,
    headers: OutgoingHttpHeaders,
    rate?: { limit: number; remaining: number; resetSecs: number },
  ): void {
    const r = rate ?? this.bucket();
    entry.status = status;
    this.counters.byStatus[status] = (this.counters.byStatus[status] ?? 0) + 1;
    if (status === 429) this.counters.rateLimited++;
    res.writeHead(status, {
      Date: new Date(this.now()).toUTCString(),
      'Content-Type': contentType,
      'Content-Length': contentLength,
      'Cache-Control': 'no-cache, no-store',
      'X-Okta-Request-Id': randomId('', 27),
      'X-Rate-Limit-Limit': r.limit,
      'X-Rate-Limit-Remaining': r.remaining,
      'X-Rate-Limit-Reset': r.resetSecs,
      ...headers,
    });
  }
}

/** A small request body (the token endpoint's form). */
async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new HttpError(400, 'E0000001', 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** First index whose value is >= `ms` in a non-decreasing array. */
function lowerBound(values: readonly number[], ms: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First k in [0, n) for which `isBefore(k)` is false, given it is true for a prefix only. */
function partition(n: number, isBefore: (k: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (isBefore(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function unlimitedListeners(controller: AbortController): AbortController {
  setMaxListeners(0, controller.signal);
  return controller;
}
