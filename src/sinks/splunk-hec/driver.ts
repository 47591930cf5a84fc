import { randomUUID } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import { Agent, request } from 'undici';
import { sleep } from '../../core/async.js';
import { OktailError } from '../../core/errors.js';
import { describeTransportError, retryAfterMs } from '../shared/http-answers.js';
import type { SendOutcome, SinkDriver, SinkItems } from '../shared/network-sink.js';
import { buildEventBody, classifyHecResponse, parseAckReply, type HecEnvelopeFields } from './framing.js';

export interface HecDriverOptions {
  /** `https://host:8088`, possibly with a path prefix (a proxy). */
  endpoint: URL;
  token: string;
  fields: HecEnvelopeFields;
  acknowledgements: boolean;
  /** An ack not reported true within this is taken as lost, and the batch is sent again. */
  ackTimeoutMs: number;
  ackPollIntervalMs: number;
  /** Time limit of one HTTP request (event or ack poll); the ack wait is apart from it. */
  requestTimeoutMs: number;
  connect: ConnectionOptions;
  userAgent: string;
}

interface PendingAck {
  ackId: number;
  deadline: number;
  resolve(outcome: SendOutcome): void;
}

/**
 * Sends events to Splunk's HTTP Event Collector. With indexer acknowledgement a request counts as
 * delivered only once `/services/collector/ack` reports its ackId true: HEC's 200 alone means "received",
 * and an indexer that restarts before indexing loses the batch without telling anyone.
 *
 * One channel (a UUID) per process and one poll loop for all of the sink's pending acks. Splunk numbers
 * acks per channel from 0 and forgets channels when it restarts, so after a restart ackId 0 means a new
 * batch. Two rules keep an old ackId from being taken for a new batch's: a poll never overlaps an event
 * request (so every ackId in a poll's answer was issued before the poll, and its response has been read),
 * and an ackId issued a second time reveals the restart, whereupon every ack issued before it is treated
 * as lost and its batch is sent again.
 */
export class HecDriver implements SinkDriver {
  readonly #options: HecDriverOptions;
  readonly #agent: Agent;
  readonly #channel = randomUUID();
  readonly #eventUrl: string;
  readonly #ackUrl: string;
  readonly #pending = new Map<number, PendingAck>();
  /** ackIds HEC issued on this channel since it last (visibly) restarted. */
  #issued = new Set<number>();
  readonly #gate = new PollGate();
  #polling: Promise<void> | null = null;
  #closed = false;
  readonly #lifetime = new AbortController();

  constructor(options: HecDriverOptions) {
    this.#options = options;
    this.#agent = new Agent({ connect: options.connect, keepAliveTimeout: 30_000 });
    const base = options.endpoint.href.replace(/\/+$/, '');
    this.#eventUrl = `${base}/services/collector/event`;
    this.#ackUrl = `${base}/services/collector/ack`;
  }

  async send(items: SinkItems, signal: AbortSignal): Promise<SendOutcome> {
    const body = buildEventBody(items, this.#options.fields);
    let status: number;
    let text: string;
    let retryAfter: string | string[] | undefined;
    try {
      await this.#gate.enterPost(signal);
    } catch (err) {
      return this.#transportFailure(err, signal, 'send events to');
    }
    try {
      ({ status, text, retryAfter } = await this.#post(this.#eventUrl, body, signal));
    } catch (err) {
      return this.#transportFailure(err, signal, 'send events to');
    } finally {
      this.#gate.leavePost();
    }
    const verdict = classifyHecResponse(status, text);
    switch (verdict.kind) {
      case 'retry': {
        const outcome: SendOutcome = {
          kind: 'retry',
          reason: verdict.reason,
          error: this.#error(verdict.message, true),
        };
        const waitMs = retryAfterMs(retryAfter);
        if (waitMs !== undefined) outcome.retryAfterMs = waitMs;
        return outcome;
      }
      case 'split':
        return { kind: 'split', error: this.#error(verdict.message, true) };
      case 'permanent': {
        const n = verdict.invalidEventNumber;
        const which =
          n !== undefined && Number.isInteger(n) && n >= 0 && n < items.length
            ? ` (event ${items.uuid(n) ?? `#${n}`} of the request)`
            : '';
        return { kind: 'permanent', error: this.#error(verdict.message + which, false) };
      }
      case 'ok':
        break;
    }
    if (!this.#options.acknowledgements) return { kind: 'ok' };
    if (verdict.ackId === null) {
      return {
        kind: 'permanent',
        error: this.#error(
          'HEC accepted the events without an ackId: indexer acknowledgement is off on this HEC token. ' +
            'Enable indexer acknowledgement on the token, or set acknowledgements: false',
          false,
        ),
      };
    }
    return this.#awaitAck(verdict.ackId, signal);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#lifetime.abort();
    for (const pending of this.#pending.values()) {
      pending.resolve({ kind: 'retry', reason: 'closed', error: this.#error('the sink closed', true) });
    }
    this.#pending.clear();
    await this.#polling?.catch(() => undefined);
    await this.#agent.close();
  }

  // ------------------------------------------------------------------------------------------------

  #awaitAck(ackId: number, signal: AbortSignal): Promise<SendOutcome> {
    if (this.#issued.has(ackId)) this.#restarted(ackId);
    this.#issued.add(ackId);
    return new Promise<SendOutcome>((resolve) => {
      const onAbort = () => {
        if (this.#pending.get(ackId)?.resolve === finish) this.#pending.delete(ackId);
        finish({
          kind: 'retry',
          reason: 'aborted',
          error: this.#error(`stopped waiting for the acknowledgement of ackId ${ackId}`, true),
        });
      };
      const finish = (outcome: SendOutcome) => {
        signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(ackId, { ackId, deadline: Date.now() + this.#options.ackTimeoutMs, resolve: finish });
      this.#ensurePolling();
    });
  }

  /** HEC issued an ackId it had issued before: it restarted and lost what it had not indexed. */
  #restarted(ackId: number): void {
    const lost = [...this.#pending.values()];
    this.#pending.clear();
    this.#issued = new Set();
    for (const pending of lost) {
      pending.resolve({
        kind: 'retry',
        reason: 'ack_lost',
        error: this.#error(
          `HEC issued ackId ${ackId} again (it restarted); ackId ${pending.ackId} will never be reported, so its events are sent again`,
          true,
        ),
      });
    }
  }

  #ensurePolling(): void {
    if (this.#polling !== null || this.#closed) return;
    this.#polling = this.#pollLoop()
      .catch(() => undefined)
      .finally(() => {
        this.#polling = null;
        if (this.#pending.size > 0) this.#ensurePolling();
      });
  }

  async #pollLoop(): Promise<void> {
    while (this.#pending.size > 0 && !this.#closed) {
      // Closing cuts the wait short; the check below then ends the loop.
      await sleep(this.#options.ackPollIntervalMs, this.#lifetime.signal).catch(() => undefined);
      if (this.#closed) return;
      this.#expire();
      if (this.#pending.size === 0) return;
      await this.#gate.enterPoll();
      try {
        await this.#poll();
      } finally {
        this.#gate.leavePoll();
      }
    }
  }

  async #poll(): Promise<void> {
    const asked = [...this.#pending.values()];
    const body = Buffer.from(JSON.stringify({ acks: asked.map((p) => p.ackId) }));
    let status: number;
    let text: string;
    try {
      ({ status, text } = await this.#post(this.#ackUrl, body, this.#lifetime.signal));
    } catch {
      return; // the next poll asks again; the ack timeout bounds the wait
    }
    if (status === 200) {
      const acks = parseAckReply(text);
      if (acks === null) return;
      for (const pending of asked) {
        if (acks.get(pending.ackId) === true && this.#pending.get(pending.ackId) === pending) {
          this.#pending.delete(pending.ackId);
          pending.resolve({ kind: 'ok' });
        }
      }
      return;
    }
    const verdict = classifyHecResponse(status, text);
    if (verdict.kind === 'permanent') {
      for (const pending of asked) {
        if (this.#pending.get(pending.ackId) !== pending) continue;
        this.#pending.delete(pending.ackId);
        pending.resolve({
          kind: 'permanent',
          error: this.#error(`polling acknowledgements: ${verdict.message}`, false),
        });
      }
    }
  }

  #expire(): void {
    const now = Date.now();
    for (const pending of [...this.#pending.values()]) {
      if (pending.deadline > now) continue;
      this.#pending.delete(pending.ackId);
      pending.resolve({
        kind: 'retry',
        reason: 'ack_timeout',
        error: this.#error(
          `HEC did not report ackId ${pending.ackId} indexed within ack_timeout_secs (${this.#options.ackTimeoutMs / 1000} s); the events are sent again`,
          true,
        ),
      });
    }
  }

  async #post(
    url: string,
    body: Buffer,
    signal: AbortSignal,
  ): Promise<{ status: number; text: string; retryAfter: string | string[] | undefined }> {
    const timeout = AbortSignal.timeout(this.#options.requestTimeoutMs);
    const response = await request(url, {
      method: 'POST',
      dispatcher: this.#agent,
      signal: AbortSignal.any([signal, timeout, this.#lifetime.signal]),
      headers: {
        authorization: `Splunk ${this.#options.token}`,
        'content-type': 'application/json',
        'user-agent': this.#options.userAgent,
        ...(this.#options.acknowledgements ? { 'x-splunk-request-channel': this.#channel } : {}),
      },
      body,
    });
    const text = await response.body.text();
    return { status: response.statusCode, text, retryAfter: response.headers['retry-after'] };
  }

  #transportFailure(err: unknown, signal: AbortSignal, what: string): SendOutcome {
    const reason = signal.aborted ? 'aborted' : 'network';
    const message = `cannot ${what} HEC at ${this.#options.endpoint.origin}: ${describeTransportError(err)}`;
    return { kind: 'retry', reason, error: this.#error(message, true, err) };
  }

  #error(message: string, retryable: boolean, cause?: unknown): OktailError {
    return new OktailError('SINK_WRITE_FAILED', message, retryable, cause === undefined ? {} : { cause });
  }
}

/**
 * Event requests share the channel; an ack poll has it alone. A waiting poll holds back new event
 * requests so that polls are not starved.
 */
class PollGate {
  #posts = 0;
  #polling = false;
  #pollWaiting = 0;
  #waiters: (() => void)[] = [];

  async enterPost(signal: AbortSignal): Promise<void> {
    while (this.#polling || this.#pollWaiting > 0) {
      signal.throwIfAborted();
      await this.#wait(signal);
    }
    this.#posts++;
  }

  leavePost(): void {
    this.#posts--;
    this.#wake();
  }

  async enterPoll(): Promise<void> {
    this.#pollWaiting++;
    try {
      while (this.#posts > 0 || this.#polling) await this.#wait();
    } finally {
      this.#pollWaiting--;
    }
    this.#polling = true;
  }

  leavePoll(): void {
    this.#polling = false;
    this.#wake();
  }

  #wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        signal?.removeEventListener('abort', done);
        resolve();
      };
      signal?.addEventListener('abort', done, { once: true });
      this.#waiters.push(done);
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
