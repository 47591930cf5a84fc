import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRandom, type Random } from '../../src/emulator/random.js';
import { JsonScanError, objectMembers, skipWhitespace } from './json-scan.js';
import { LoopbackHttpsServer } from './loopback-https.js';

/*
 * An emulator of Splunk's HTTP Event Collector (HEC), written from Splunk's REST reference and its
 * documented status codes: `/services/collector/event` (concatenated JSON envelopes), indexer
 * acknowledgement over `/services/collector/ack` with per-channel ackIds, token checks and the error
 * bodies HEC sends (`{"text":...,"code":N}`). It is an emulator, not Splunk: no search, no parsing of
 * event contents beyond the envelope. A "restart" forgets every channel and every accepted batch that was
 * not yet indexed, as a real indexer restart loses them, and ackIds start again from 0.
 */

export interface HecToken {
  value: string;
  /** Indexer acknowledgement (`useACK`) on this token. */
  ack?: boolean;
  disabled?: boolean;
  /** Allowed indexes; absent: any. */
  indexes?: string[];
}

export interface HecEmulatorOptions {
  tls: { cert: string; key: string };
  tokens: HecToken[];
  /** Time from accepting a batch to indexing it (its ack turns true). Default 20 ms. */
  indexDelayMs?: number;
  /** Bodies larger than this get 413. Default 8 MB. */
  maxContentLength?: number;
}

export type HecFault =
  /** 503 `{"text":"Server is busy","code":9}` */
  | 'busy'
  /** 503 code 18, queues full */
  | 'unhealthy'
  /** The connection is destroyed before any response. */
  | 'reset'
  /** The batch is accepted (200 with an ackId), then the emulator restarts before indexing it. */
  | 'restart-after-accept';

/** One indexed event: the envelope's members as raw JSON text (exactly the bytes the client sent). */
export interface HecIndexedEvent {
  event: string;
  time: string | null;
  host: string | null;
  source: string | null;
  sourcetype: string | null;
  index: string | null;
  channel: string | null;
}

export interface HecStats {
  requests: number;
  /** Responses by HEC code ("0", "9", ...); `reset` for dropped connections. */
  byCode: Record<string, number>;
  /** Events in batches that got a 200. */
  eventsAccepted: number;
  batchesAccepted: number;
  ackPolls: number;
  restarts: number;
  /** Accepted batches (and their events) a restart forgot before indexing them. */
  batchesLost: number;
  eventsLost: number;
}

interface Channel {
  nextAckId: number;
  /** ackId -> indexed? Indexed ones are removed once a poll reported them true, as Splunk does. */
  acks: Map<number, boolean>;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class HecReply extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    readonly text: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(text);
  }
}

const TOKEN_DISABLED = () => new HecReply(403, 1, 'Token disabled');
const TOKEN_REQUIRED = () => new HecReply(401, 2, 'Token is required');
const INVALID_AUTHORIZATION = () => new HecReply(401, 3, 'Invalid authorization');
const INVALID_TOKEN = () => new HecReply(403, 4, 'Invalid token');
const NO_DATA = () => new HecReply(400, 5, 'No data');
const INVALID_DATA_FORMAT = (n: number) =>
  new HecReply(400, 6, 'Invalid data format', { 'invalid-event-number': n });
const INCORRECT_INDEX = (n: number) => new HecReply(400, 7, 'Incorrect index', { 'invalid-event-number': n });
const SERVER_BUSY = () => new HecReply(503, 9, 'Server is busy');
const CHANNEL_MISSING = () => new HecReply(400, 10, 'Data channel is missing');
const INVALID_CHANNEL = () => new HecReply(400, 11, 'Invalid data channel');
const EVENT_REQUIRED = (n: number) =>
  new HecReply(400, 12, 'Event field is required', { 'invalid-event-number': n });
const EVENT_BLANK = (n: number) =>
  new HecReply(400, 13, 'Event field cannot be blank', { 'invalid-event-number': n });
const ACK_DISABLED = () => new HecReply(400, 14, 'ACK is disabled');
const UNHEALTHY = () => new HecReply(503, 18, 'HEC is unhealthy, queues are full');

export class HecEmulator extends LoopbackHttpsServer {
  readonly #options: HecEmulatorOptions;
  #channels = new Map<string, Channel>();
  /** Batches accepted with an ackId and not yet indexed, with the timer that will index them. */
  #pending = new Set<{ timer: NodeJS.Timeout; events: HecIndexedEvent[] }>();
  #indexed: HecIndexedEvent[] = [];
  #queued: HecFault[] = [];
  /** `busy`: every event request gets 503 code 9 until set back to `ok`; `token-disabled`: 403 code 1. */
  mode: 'ok' | 'busy' | 'token-disabled' = 'ok';
  #random: { probability: number; kinds: HecFault[]; random: Random } | null = null;
  readonly stats: HecStats = {
    requests: 0,
    byCode: {},
    eventsAccepted: 0,
    batchesAccepted: 0,
    ackPolls: 0,
    restarts: 0,
    batchesLost: 0,
    eventsLost: 0,
  };

  constructor(options: HecEmulatorOptions) {
    super(options.tls, 'HEC emulator');
    this.#options = options;
  }

  override async stop(): Promise<void> {
    for (const batch of this.#pending) clearTimeout(batch.timer);
    this.#pending.clear();
    await super.stop();
  }

  /** Indexed events, in indexing order. */
  events(): readonly HecIndexedEvent[] {
    return this.#indexed;
  }

  /** Batches accepted but not yet indexed. */
  pendingBatches(): number {
    return this.#pending.size;
  }

  /**
   * What a restart of the indexer does to HEC: every accepted but unindexed batch is gone, and so is
   * every channel with its ackIds (new requests start again from ackId 0).
   */
  restart(): void {
    for (const batch of this.#pending) {
      clearTimeout(batch.timer);
      this.stats.batchesLost++;
      this.stats.eventsLost += batch.events.length;
    }
    this.#pending.clear();
    this.#channels.clear();
    this.stats.restarts++;
  }

  /** The next event requests get these faults, in order. */
  queueFaults(...faults: HecFault[]): void {
    this.#queued.push(...faults);
  }

  /** Each event request without a queued fault gets one of `kinds` with `probability` (seeded). */
  randomFaults(options: { probability: number; kinds: HecFault[]; seed: number } | null): void {
    this.#random =
      options === null
        ? null
        : { probability: options.probability, kinds: options.kinds, random: createRandom(options.seed) };
  }

  // ------------------------------------------------------------------------------------------------

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'https://hec.invalid');
    try {
      const path = url.pathname.replace(/\/+$/, '');
      if (path === '/services/collector/health') throw new HecReply(200, 17, 'HEC is healthy');
      const isEvent =
        path === '/services/collector' ||
        path === '/services/collector/event' ||
        path === '/services/collector/event/1.0';
      const isAck = path === '/services/collector/ack';
      if (!isEvent && !isAck) throw new HecReply(404, 404, 'The requested URL was not found on this server.');
      if (req.method !== 'POST') throw new HecReply(405, 405, 'Method Not Allowed');
      const token = this.#authenticate(req);
      if (this.mode === 'token-disabled') throw TOKEN_DISABLED();
      const channelId = header(req, 'x-splunk-request-channel') ?? url.searchParams.get('channel');
      if (channelId !== null && !GUID.test(channelId)) throw INVALID_CHANNEL();
      if (isAck) return this.#ack(res, token, channelId, body);
      const fault = this.mode === 'busy' ? 'busy' : this.#fault();
      if (fault === 'reset') {
        this.#count('reset');
        res.destroy();
        return;
      }
      if (fault === 'busy') throw SERVER_BUSY();
      if (fault === 'unhealthy') throw UNHEALTHY();
      if (token.ack && channelId === null) throw CHANNEL_MISSING();
      if (body.length > (this.#options.maxContentLength ?? 8 * 1024 * 1024)) {
        throw new HecReply(413, 413, 'Content-Length of ' + body.length + ' too large (maximum is 8388608)');
      }
      const events = this.#parse(body.toString('utf8'), token, channelId);
      this.stats.eventsAccepted += events.length;
      this.stats.batchesAccepted++;
      if (!token.ack || channelId === null) {
        this.#indexed.push(...events);
        return this.#reply(res, 200, { text: 'Success', code: 0 });
      }
      const channel = this.#channel(channelId);
      const ackId = channel.nextAckId++;
      channel.acks.set(ackId, false);
      const batch = {
        events,
        timer: setTimeout(() => {
          this.#pending.delete(batch);
          this.#indexed.push(...events);
          // A restart in between dropped the channel: the ack is gone with it.
          if (this.#channels.get(channelId) === channel) channel.acks.set(ackId, true);
        }, this.#options.indexDelayMs ?? 20),
      };
      this.#pending.add(batch);
      this.#reply(res, 200, { text: 'Success', code: 0, ackId });
      if (fault === 'restart-after-accept') this.restart();
    } catch (err) {
      if (!(err instanceof HecReply)) throw err;
      this.#reply(res, err.status, { text: err.text, code: err.code, ...err.extra });
    }
  }

  #authenticate(req: IncomingMessage): HecToken {
    const auth = header(req, 'authorization');
    if (auth === null || auth.trim() === '') throw TOKEN_REQUIRED();
    const m = /^Splunk\s+(\S+)$/i.exec(auth.trim());
    if (m === null) throw INVALID_AUTHORIZATION();
    const token = this.#options.tokens.find((t) => t.value === m[1]);
    if (token === undefined) throw INVALID_TOKEN();
    if (token.disabled) throw TOKEN_DISABLED();
    return token;
  }

  #ack(res: ServerResponse, token: HecToken, channelId: string | null, body: Buffer): void {
    this.stats.ackPolls++;
    if (!token.ack) throw ACK_DISABLED();
    if (channelId === null) throw CHANNEL_MISSING();
    let ids: unknown;
    try {
      ids = (JSON.parse(body.toString('utf8')) as { acks?: unknown }).acks;
    } catch {
      throw INVALID_DATA_FORMAT(0);
    }
    if (!Array.isArray(ids) || !ids.every((id) => Number.isInteger(id))) throw INVALID_DATA_FORMAT(0);
    const channel = this.#channels.get(channelId);
    const acks: Record<string, boolean> = {};
    for (const id of ids as number[]) {
      const indexed = channel?.acks.get(id) === true;
      if (indexed) channel.acks.delete(id);
      acks[String(id)] = indexed;
    }
    this.#reply(res, 200, { acks });
  }

  #parse(text: string, token: HecToken, channel: string | null): HecIndexedEvent[] {
    const events: HecIndexedEvent[] = [];
    let i = skipWhitespace(text, 0);
    if (i >= text.length) throw NO_DATA();
    while (i < text.length) {
      const n = events.length;
      let members: Map<string, string>;
      try {
        const scanned = objectMembers(text, i);
        members = scanned.members;
        i = skipWhitespace(text, scanned.end);
      } catch (err) {
        if (err instanceof JsonScanError) throw INVALID_DATA_FORMAT(n);
        throw err;
      }
      const event = members.get('event');
      if (event === undefined || event === 'null') throw EVENT_REQUIRED(n);
      if (event === '""') throw EVENT_BLANK(n);
      const time = members.get('time') ?? null;
      if (time !== null && !/^"?-?\d+(\.\d+)?"?$/.test(time)) throw INVALID_DATA_FORMAT(n);
      const index = stringMember(members, 'index');
      if (index !== null && token.indexes !== undefined && !token.indexes.includes(index)) {
        throw INCORRECT_INDEX(n);
      }
      events.push({
        event,
        time,
        host: stringMember(members, 'host'),
        source: stringMember(members, 'source'),
        sourcetype: stringMember(members, 'sourcetype'),
        index,
        channel,
      });
    }
    return events;
  }

  #channel(id: string): Channel {
    let channel = this.#channels.get(id);
    if (!channel) {
      channel = { nextAckId: 0, acks: new Map() };
      this.#channels.set(id, channel);
    }
    return channel;
  }

  #fault(): HecFault | null {
    const queued = this.#queued.shift();
    if (queued !== undefined) return queued;
    const random = this.#random;
    if (random && random.random.next() < random.probability) return random.random.pick(random.kinds);
    return null;
  }

  #count(code: string): void {
    this.stats.byCode[code] = (this.stats.byCode[code] ?? 0) + 1;
  }

  #reply(res: ServerResponse, status: number, body: Record<string, unknown>): void {
    if (typeof body.code === 'number') this.#count(String(body.code));
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=UTF-8',
      'Content-Length': Buffer.byteLength(text),
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(text);
  }
}

function header(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

function stringMember(members: Map<string, string>, key: string): string | null {
  const raw = members.get(key);
  if (raw === undefined || !raw.startsWith('"')) return null;
  return JSON.parse(raw) as string;
}
