import { batchFromNdjson, copyNdjson, ndjsonBytes } from '../../core/event-batch.js';
import { OktailError } from '../../core/errors.js';
import type { EventBatch, Sink, WriteResult } from '../../core/sink.js';
import type { NetworkSinkOptions, SinkDriver } from '../shared/network-sink.js';
import { createNetworkSink } from '../shared/network-sink.js';

/** The pages held for one source: the next object, once flushed. */
interface Unit {
  readonly domain: string;
  count: number;
  /** Bytes of NDJSON held: `data[0, bytes)` of the source's buffer. */
  bytes: number;
  /** When the first page joined, in performance.now() time. */
  readonly since: number;
  /** The pages as one batch, made at the first flush and kept for its retries. */
  batch: EventBatch | null;
}

/** The smallest buffer a source's pages are gathered in. */
const MIN_BUFFER = 1 << 20;

export interface S3SinkOptions extends NetworkSinkOptions {
  /** How long the first page of an object may wait for more (batch.timeout_secs). */
  holdMs: number;
}

/**
 * Holds a source's pages and writes them as one object when the pipeline flushes: when the next page
 * would pass `batch.max_events` or `batch.max_bytes`, when the first page has waited `batch.timeout_secs`,
 * at the end of a `--once` cycle and on shutdown. The pipeline commits right after each flush and
 * flushes before any page that does not fit, so the one object not yet covered by a checkpoint always
 * starts with the first event after it. After a crash the replay fetches that event first again, and its
 * object gets the same key (`objectKey`: source, published and uuid of the first event) and replaces the
 * stored one, however differently timing cuts it this time; whatever that object held past the new cut
 * is in the objects after it.
 *
 * One network-sink helper per source, without a batch timeout: it sends each flushed unit as it is, and
 * cuts it into several objects only when a single page alone passes the limits (from the page's first
 * event, so at the same places on a replay). A shared helper could join two sources' units in one request.
 */
export class S3Sink implements Sink {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly kind = 'acknowledged' as const;
  readonly #options: Omit<NetworkSinkOptions, 'driver'>;
  readonly #driver: SinkDriver;
  readonly #holdMs: number;
  readonly #perSource = new Map<string, Sink>();
  readonly #units = new Map<string, Unit>();
  /**
   * Per source, the buffer its pages are copied into (a page's own bytes are reused once the next page is
   * fetched). Kept from one object to the next while they fill it: allocating and faulting in tens of MB
   * per object, and the full collections V8 runs for that much new external memory, cost more CPU than
   * compressing the events.
   */
  readonly #buffers = new Map<string, Buffer>();
  #closed: Promise<void> | null = null;

  readonly holds = {
    fits: (batch: EventBatch): boolean => {
      const unit = this.#units.get(batch.source);
      if (!unit) return true;
      const { maxEvents, maxBytes } = this.#options.settings.batch;
      return unit.count + batch.count <= maxEvents && unit.bytes + ndjsonBytes(batch) <= maxBytes;
    },
    dueAt: (source: string): number | undefined => {
      const unit = this.#units.get(source);
      if (!unit) return undefined;
      const { maxEvents, maxBytes } = this.#options.settings.batch;
      if (unit.count >= maxEvents || unit.bytes >= maxBytes) return Number.NEGATIVE_INFINITY;
      return unit.since + this.#holdMs;
    },
    flush: (source: string, signal: AbortSignal): Promise<WriteResult> => this.#flush(source, signal),
    drop: (source: string): void => {
      this.#units.delete(source);
      this.#buffers.delete(source);
    },
  };

  constructor(options: S3SinkOptions) {
    const { driver, holdMs, ...rest } = options;
    this.name = options.name;
    this.inputs = options.inputs;
    this.#driver = driver;
    this.#holdMs = holdMs;
    this.#options = {
      ...rest,
      settings: { ...rest.settings, batch: { ...rest.settings.batch, timeoutMs: 0 } },
    };
  }

  async open(): Promise<void> {}

  async write(batch: EventBatch): Promise<WriteResult> {
    if (this.#closed) return this.#closedResult();
    if (batch.count === 0) return { kind: 'ok' };
    let unit = this.#units.get(batch.source);
    if (!unit) {
      unit = { domain: batch.domain, count: 0, bytes: 0, since: performance.now(), batch: null };
      this.#units.set(batch.source, unit);
    }
    const size = ndjsonBytes(batch);
    const buffer = this.#room(batch.source, unit.bytes, unit.bytes + size);
    unit.bytes += copyNdjson(batch, buffer, unit.bytes);
    unit.count += batch.count;
    unit.batch = null;
    return { kind: 'held' };
  }

  /** The source's buffer with room for `needed` bytes, keeping its first `used`. */
  #room(source: string, used: number, needed: number): Buffer {
    const current = this.#buffers.get(source);
    if (current && current.length >= needed) return current;
    let size = Math.max(current?.length ?? 0, MIN_BUFFER);
    while (size < needed) size *= 2;
    // Doubling past max_bytes would only hold memory no object uses (a page alone may still pass it).
    size = Math.max(needed, Math.min(size, this.#options.settings.batch.maxBytes));
    const grown = Buffer.allocUnsafe(size);
    current?.copy(grown, 0, 0, used);
    this.#buffers.set(source, grown);
    return grown;
  }

  async #flush(source: string, signal: AbortSignal): Promise<WriteResult> {
    if (this.#closed) return this.#closedResult();
    const unit = this.#units.get(source);
    if (!unit) return { kind: 'ok' };
    unit.batch ??= batchFromNdjson(source, unit.domain, this.#buffers.get(source)!.subarray(0, unit.bytes));
    let sink = this.#perSource.get(source);
    if (!sink) {
      // The driver is shared; only this sink closes it, after every helper finished.
      const driver: SinkDriver = { send: (items, s) => this.#driver.send(items, s) };
      sink = createNetworkSink({ ...this.#options, driver });
      this.#perSource.set(source, sink);
    }
    const result = await sink.write(unit.batch, signal);
    if (result.kind === 'ok' && this.#units.get(source) === unit) {
      this.#units.delete(source);
      // A source that caught up sends small objects: it need not keep a buffer sized for a backlog.
      const buffer = this.#buffers.get(source);
      if (buffer && buffer.length > MIN_BUFFER && unit.bytes < buffer.length / 4)
        this.#buffers.delete(source);
    }
    return result;
  }

  #closedResult(): WriteResult {
    return { kind: 'fatal', error: new OktailError('SINK_WRITE_FAILED', `Sink ${this.name} is closed`) };
  }

  checkpoint(): undefined {
    return undefined;
  }

  /** What is still held was never committed: it is dropped, and fetched again at the next start. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#units.clear();
      this.#buffers.clear();
      await Promise.allSettled([...this.#perSource.values()].map((s) => s.close()));
      await this.#driver.close?.();
    })();
    return this.#closed;
  }
}
