import type { EventBatch, Sink, WriteResult } from '../../core/sink.js';
import { OktailError } from '../../core/errors.js';
import type { NetworkSinkOptions, SinkDriver } from '../shared/network-sink.js';
import { createNetworkSink } from '../shared/network-sink.js';

/**
 * Objects are cut per page, per source: one helper per source, each without a batch timeout. The
 * pipeline keeps at most one page per source in flight, so a helper's buffer only ever holds the page
 * being written, and its requests are that page cut by max_events and max_bytes from the page's first
 * event. A page fetched again from the same cursor after a crash starts with the same event and is cut at
 * the same places (any events Okta persisted since only extend the last piece), so every object it
 * produces has a key that already exists and replaces it. A shared helper would mix pages of several
 * sources into one request, and where it cut would then depend on timing.
 */
export class S3Sink implements Sink {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly kind = 'acknowledged' as const;
  readonly #options: Omit<NetworkSinkOptions, 'driver'>;
  readonly #driver: SinkDriver;
  readonly #perSource = new Map<string, Sink>();
  #closed: Promise<void> | null = null;

  constructor(options: NetworkSinkOptions) {
    const { driver, ...rest } = options;
    this.name = options.name;
    this.inputs = options.inputs;
    this.#driver = driver;
    this.#options = {
      ...rest,
      settings: { ...rest.settings, batch: { ...rest.settings.batch, timeoutMs: 0 } },
    };
  }

  async open(): Promise<void> {}

  write(batch: EventBatch, signal: AbortSignal): Promise<WriteResult> {
    if (this.#closed) {
      return Promise.resolve({
        kind: 'fatal',
        error: new OktailError('SINK_WRITE_FAILED', `Sink ${this.name} is closed`),
      });
    }
    let sink = this.#perSource.get(batch.source);
    if (!sink) {
      // The driver is shared; only this sink closes it, after every helper finished.
      const driver: SinkDriver = { send: (items, s) => this.#driver.send(items, s) };
      sink = createNetworkSink({ ...this.#options, driver });
      this.#perSource.set(batch.source, sink);
    }
    return sink.write(batch, signal);
  }

  checkpoint(): undefined {
    return undefined;
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.allSettled([...this.#perSource.values()].map((s) => s.close()));
      await this.#driver.close?.();
    })();
    return this.#closed;
  }
}
