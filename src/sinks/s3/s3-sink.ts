import { batchFromNdjson, copyNdjson, eventFields, ndjsonBytes, ndjsonView } from '../../core/event-batch.js';
import { OktailError, errorMessage } from '../../core/errors.js';
import type { EventBatch, Sink, WriteResult } from '../../core/sink.js';
import type { NetworkSinkOptions, SinkDriver } from '../shared/network-sink.js';
import { createNetworkSink } from '../shared/network-sink.js';
import type { S3Driver } from './driver.js';
import { GzipMember } from './gzip-member.js';
import { withRoom, worthKeeping } from './room.js';

/** The pages held for one source: the next object, once flushed. */
interface Unit {
  readonly domain: string;
  count: number;
  /** Bytes of NDJSON held (before compression). */
  bytes: number;
  /** When the first page joined, in performance.now() time. */
  readonly since: number;
  /**
   * Present while the pages are compressed as they arrive (gzip, and the first page fitting the limits):
   * the object's key, the compressed pages, and each event's NDJSON size.
   */
  readonly gzip: { key: string; member: GzipMember; sizes: number[] } | null;
  /** The pages as one batch, made at the first flush and kept for its retries. */
  batch: EventBatch | null;
}

export interface S3SinkOptions extends NetworkSinkOptions {
  driver: S3Driver;
  compression: 'gzip' | 'none';
  compressionLevel: number;
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
 * With gzip each page is compressed as it arrives, into one gzip member per object (`GzipMember`): only
 * the compressed bytes are held (about a ninth), and no copy of the page is made. Without compression,
 * and for a page that alone passes the limits, the pages are copied into a buffer per source instead.
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
  readonly #driver: S3Driver;
  readonly #compression: 'gzip' | 'none';
  readonly #level: number;
  readonly #holdMs: number;
  readonly #perSource = new Map<string, Sink>();
  readonly #units = new Map<string, Unit>();
  /**
   * Per source, the buffer its object is written into: the pages copied uncompressed (a page's own bytes
   * are reused once the next page is fetched), or the gzip member. Kept from one object to the next while
   * they fill it: copying each page into fresh memory and joining the copies per object (page faults, and
   * the full collections V8 runs for that much new external memory) cost about 1.6 CPU s more per
   * 200,000 events in a trial. Only a source without a unit in flight hands its buffer to a new one.
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
    const { driver, holdMs, compression, compressionLevel, ...rest } = options;
    this.name = options.name;
    this.inputs = options.inputs;
    this.#driver = driver;
    this.#compression = compression;
    this.#level = compressionLevel;
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
    const size = ndjsonBytes(batch);
    let unit = this.#units.get(batch.source);
    if (!unit) {
      unit = this.#start(batch, size);
      this.#units.set(batch.source, unit);
    }
    unit.batch = null;
    if (unit.gzip) {
      const { member, sizes } = unit.gzip;
      for (let i = 0; i < batch.count; i++)
        sizes.push((batch.ends[i] as number) - (batch.starts[i] as number) + 1);
      let bytes = ndjsonView(batch);
      if (!bytes) {
        bytes = Buffer.allocUnsafe(size);
        copyNdjson(batch, bytes);
      }
      try {
        member.add(bytes);
      } catch (err) {
        this.holds.drop(batch.source);
        return this.#compressionFailed(err);
      }
    } else {
      const buffer = this.#room(batch.source, unit.bytes, unit.bytes + size);
      copyNdjson(batch, buffer, unit.bytes);
    }
    unit.bytes += size;
    unit.count += batch.count;
    return { kind: 'held' };
  }

  /** A new object starting with `batch`. */
  #start(batch: EventBatch, size: number): Unit {
    const base = { domain: batch.domain, count: 0, bytes: 0, since: performance.now(), batch: null };
    const { maxEvents, maxBytes } = this.#options.settings.batch;
    // A page that alone passes the limits is cut into several objects by the helper, from its events.
    if (this.#compression !== 'gzip' || batch.count > maxEvents || size > maxBytes) {
      return { ...base, gzip: null };
    }
    const fields = eventFields(batch);
    const key = this.#driver.keyFor({
      length: batch.count,
      uuid: (i) => fields.uuid(i),
      published: (i) => fields.published(i),
      source: () => batch.source,
      bytes: (i) => batch.data.subarray(batch.starts[i], batch.ends[i]),
    });
    // The source has no unit: the buffer its last object was sent from is free again.
    const member = new GzipMember(this.#level, this.#buffers.get(batch.source));
    return { ...base, gzip: { key, member, sizes: [] } };
  }

  /** The source's buffer with room for `needed` bytes, keeping its first `used`. */
  #room(source: string, used: number, needed: number): Buffer {
    // Doubling past max_bytes would only hold memory no object uses (a page alone may still pass it).
    const buffer = withRoom(this.#buffers.get(source), used, needed, this.#options.settings.batch.maxBytes);
    this.#buffers.set(source, buffer);
    return buffer;
  }

  async #flush(source: string, signal: AbortSignal): Promise<WriteResult> {
    if (this.#closed) return this.#closedResult();
    const unit = this.#units.get(source);
    if (!unit) return { kind: 'ok' };
    if (!unit.batch) {
      if (unit.gzip) {
        const { member, sizes, key } = unit.gzip;
        unit.batch = sizedBatch(source, unit.domain, sizes);
        this.#driver.prepared.set(unit.batch, { key, body: member.finish() });
      } else {
        unit.batch = batchFromNdjson(source, unit.domain, this.#buffers.get(source)!.subarray(0, unit.bytes));
      }
    }
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
      // Stored: the object's buffer is kept for the source's next one.
      if (unit.gzip) this.#buffers.set(source, unit.gzip.member.buffer);
      // A source that caught up sends small objects: it need not keep a buffer sized for a backlog.
      const buffer = this.#buffers.get(source);
      if (buffer && !worthKeeping(buffer, unit.gzip ? unit.gzip.member.length : unit.bytes)) {
        this.#buffers.delete(source);
      }
    }
    return result;
  }

  #closedResult(): WriteResult {
    return { kind: 'fatal', error: new OktailError('SINK_WRITE_FAILED', `Sink ${this.name} is closed`) };
  }

  /** zlib failing on bytes it was given is not something a retry mends. */
  #compressionFailed(err: unknown): WriteResult {
    return {
      kind: 'fatal',
      error: new OktailError('SINK_WRITE_FAILED', `Sink ${this.name}: gzip failed: ${errorMessage(err)}`),
    };
  }

  checkpoint(): undefined {
    return undefined;
  }

  /** What is still held was never committed: it is dropped, and fetched again at the next start. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      for (const source of [...this.#units.keys()]) this.holds.drop(source);
      this.#buffers.clear();
      await Promise.allSettled([...this.#perSource.values()].map((s) => s.close()));
      await this.#driver.close?.();
    })();
    return this.#closed;
  }
}

/**
 * A batch that stands for an object compressed as its pages arrived: it has the events' count and NDJSON
 * sizes, for the helper's limits and metrics, but not their bytes (the driver sends the prepared body).
 */
function sizedBatch(source: string, domain: string, sizes: readonly number[]): EventBatch {
  const count = sizes.length;
  const starts = new Uint32Array(count);
  const ends = new Uint32Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    starts[i] = at;
    at += sizes[i] as number;
    ends[i] = at - 1;
  }
  return {
    source,
    domain,
    count,
    data: Buffer.alloc(0),
    starts,
    ends,
    uuids: [],
    published: [],
    eventTypes: [],
    severities: [],
  };
}
