import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ReadinessTracker, type Readiness, type ReadinessSource } from './readiness.js';
import type { TelemetryEvent, TelemetrySink } from './telemetry.js';
import type { ClusterTelemetry } from '../cluster/coordinator.js';

export interface MetricsTelemetryOptions {
  /** Every happening is forwarded here after the metrics are updated (the log, progress). */
  next: TelemetrySink;
  /** The configured sources: their series exist from the start, and readiness knows their bounds. */
  sources: readonly ReadinessSource[];
  /** The configured sinks and the sources each receives, so their counters start at 0. */
  sinks?: readonly { name: string; type?: string; inputs: readonly string[] }[];
  /** Adds Node.js process metrics (CPU, memory, event loop) to the registry. */
  defaultMetrics?: boolean;
  version?: string;
  now?: () => number;
  /** A replica sharing its sources (state.backend: postgres): cluster metrics, readiness of owned sources. */
  cluster?: boolean;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const REQUEST_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Prometheus metrics fed by the telemetry catalogue, in front of the log: the pipeline still calls one
 * TelemetrySink. Labels are only configured names and status codes, never URLs or anything secret.
 */
export class MetricsTelemetry implements TelemetrySink, ClusterTelemetry {
  readonly registry = new Registry();
  readonly readiness: ReadinessTracker;
  readonly #next: TelemetrySink;
  readonly #now: () => number;
  /** Newest delivered `published` per source, epoch ms; lag is computed from it at scrape time. */
  readonly #newest = new Map<string, number>();

  readonly #requests: Counter<'source' | 'status'>;
  readonly #requestSeconds: Histogram<'source'>;
  readonly #rateLimited: Counter<'source'>;
  readonly #retries: Counter<'source' | 'reason'>;
  readonly #rateLimitLimit: Gauge<'source'>;
  readonly #rateLimitRemaining: Gauge<'source'>;
  readonly #rateLimitReset: Gauge<'source'>;
  readonly #rateLimitWait: Counter<'source'>;
  readonly #received: Counter<'source'>;
  readonly #receivedBytes: Counter<'source'>;
  readonly #filtered: Counter<'source'>;
  /** Stays 0: no code path loses an event; the series exists so the documented alert has something to watch. */
  readonly #dropped: Counter<'source'>;
  readonly #written: Counter<'sink' | 'source'>;
  readonly #writtenBytes: Counter<'sink' | 'source'>;
  readonly #sinkRetries: Counter<'sink' | 'type' | 'reason'>;
  readonly #sinkSent: Counter<'sink' | 'type'>;
  readonly #sinkSentBytes: Counter<'sink' | 'type'>;
  readonly #sinkRequestSeconds: Histogram<'sink' | 'type'>;
  readonly #sinkErrors: Counter<'sink' | 'type' | 'kind'>;
  readonly #sinkInFlight: Gauge<'sink' | 'type'>;
  readonly #sinkTypes = new Map<string, string>();
  readonly #commits: Counter<'source'>;
  readonly #commitSeconds: Histogram<'source'>;
  readonly #cycles: Counter<'source'>;
  readonly #lastCycle: Gauge<'source'>;
  readonly #scriptErrors: Counter<'source'>;
  readonly #halted: Gauge<'source'>;
  readonly #cluster: {
    owned: Gauge;
    renewals: Counter;
    lost: Counter;
    takeovers: Counter;
  } | null = null;

  constructor(options: MetricsTelemetryOptions) {
    this.#next = options.next;
    this.#now = options.now ?? Date.now;
    this.readiness = new ReadinessTracker(options.sources, this.#now);
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Counter<L>({ name, help, labelNames, registers });
    const gauge = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Gauge<L>({ name, help, labelNames, registers });

    this.#requests = counter(
      'oktail_source_requests_total',
      'HTTP responses from the org, by status code ("none": no response).',
      ['source', 'status'],
    );
    this.#requestSeconds = new Histogram({
      name: 'oktail_source_request_duration_seconds',
      help: 'Time to fetch one page of the System Log.',
      labelNames: ['source'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.#rateLimited = counter('oktail_source_rate_limited_total', 'Responses with status 429.', ['source']);
    this.#retries = counter('oktail_source_retries_total', 'Requests retried, by error code.', [
      'source',
      'reason',
    ]);
    this.#rateLimitLimit = gauge('oktail_source_rate_limit_limit', 'X-Rate-Limit-Limit last seen.', [
      'source',
    ]);
    this.#rateLimitRemaining = gauge(
      'oktail_source_rate_limit_remaining',
      'X-Rate-Limit-Remaining last seen.',
      ['source'],
    );
    this.#rateLimitReset = gauge(
      'oktail_source_rate_limit_reset_timestamp_seconds',
      'When the rate-limit window last seen resets (local clock, Unix time).',
      ['source'],
    );
    this.#rateLimitWait = counter(
      'oktail_source_rate_limit_wait_seconds_total',
      'Time spent waiting for rate-limit budget before requests.',
      ['source'],
    );
    this.#received = counter('oktail_source_events_received_total', 'Events received from the org.', [
      'source',
    ]);
    this.#receivedBytes = counter(
      'oktail_source_received_bytes_total',
      'Response body bytes received from the org.',
      ['source'],
    );
    this.#filtered = counter(
      'oktail_source_events_filtered_total',
      'Events the collection script removed on purpose.',
      ['source'],
    );
    this.#dropped = counter(
      'oktail_source_events_dropped_total',
      'Events lost without being delivered. Must stay 0.',
      ['source'],
    );
    this.#written = counter('oktail_sink_events_written_total', 'Events a sink acknowledged.', [
      'sink',
      'source',
    ]);
    this.#writtenBytes = counter('oktail_sink_written_bytes_total', 'NDJSON bytes a sink acknowledged.', [
      'sink',
      'source',
    ]);
    this.#sinkRetries = counter('oktail_sink_retries_total', 'Sink writes or requests retried.', [
      'sink',
      'type',
      'reason',
    ]);
    this.#sinkSent = counter('oktail_sink_events_sent_total', 'Events a network sink delivered.', [
      'sink',
      'type',
    ]);
    this.#sinkSentBytes = counter(
      'oktail_sink_bytes_sent_total',
      'Event bytes a network sink delivered (before compression).',
      ['sink', 'type'],
    );
    this.#sinkRequestSeconds = new Histogram({
      name: 'oktail_sink_request_duration_seconds',
      help: "Time of a network sink's requests, until acknowledged or failed.",
      labelNames: ['sink', 'type'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.#sinkErrors = counter('oktail_sink_errors_total', 'Failed network sink requests, by kind.', [
      'sink',
      'type',
      'kind',
    ]);
    this.#sinkInFlight = new Gauge({
      name: 'oktail_sink_in_flight_requests',
      help: 'Requests a network sink has in flight.',
      labelNames: ['sink', 'type'],
      registers,
    });
    this.#commits = counter(
      'oktail_checkpoint_commits_total',
      'Checkpoints committed after a delivered page.',
      ['source'],
    );
    this.#commitSeconds = new Histogram({
      name: 'oktail_checkpoint_commit_duration_seconds',
      help: 'Time to commit a checkpoint durably.',
      labelNames: ['source'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#cycles = counter('oktail_source_cycles_total', 'Collection cycles finished.', ['source']);
    this.#lastCycle = gauge(
      'oktail_source_last_cycle_success_timestamp_seconds',
      'When the last cycle finished (Unix time).',
      ['source'],
    );
    this.#scriptErrors = counter(
      'oktail_source_script_errors_total',
      'Cycles failed by the collection script.',
      ['source'],
    );
    this.#halted = gauge(
      'oktail_source_halted',
      '1 when the source stopped for good and needs an operator.',
      ['source'],
    );

    // Computed when scraped, so a stuck source's lag keeps growing instead of freezing.
    const newestGauge: Gauge<'source'> = new Gauge({
      name: 'oktail_source_newest_event_timestamp_seconds',
      help: '`published` of the newest delivered event (Unix time).',
      labelNames: ['source'],
      registers,
      collect: () => {
        for (const [source, ms] of this.#newest) newestGauge.set({ source }, ms / 1000);
      },
    });
    const lagGauge: Gauge<'source'> = new Gauge({
      name: 'oktail_source_lag_seconds',
      help: 'Now minus `published` of the newest delivered event.',
      labelNames: ['source'],
      registers,
      collect: () => {
        const now = this.#now();
        for (const [source, ms] of this.#newest) lagGauge.set({ source }, Math.max(0, now - ms) / 1000);
      },
    });

    const build = gauge('oktail_build_info', 'Always 1; the labels say which oktail runs.', [
      'version',
      'nodejs',
    ]);
    build.set({ version: options.version ?? 'unknown', nodejs: process.version }, 1);

    // Series that exist from the start make `rate()` and "must stay 0" alerts work before any traffic.
    for (const { name: source } of options.sources) {
      for (const c of [this.#received, this.#receivedBytes, this.#filtered, this.#dropped, this.#rateLimited])
        c.inc({ source }, 0);
      for (const c of [this.#commits, this.#cycles, this.#scriptErrors]) c.inc({ source }, 0);
      this.#halted.set({ source }, 0);
    }
    for (const sink of options.sinks ?? []) {
      const type = sink.type ?? 'unknown';
      this.#sinkTypes.set(sink.name, type);
      for (const kind of ['retryable', 'permanent', 'split'])
        this.#sinkErrors.inc({ sink: sink.name, type, kind }, 0);
      this.#sinkSent.inc({ sink: sink.name, type }, 0);
      this.#sinkSentBytes.inc({ sink: sink.name, type }, 0);
      this.#sinkInFlight.set({ sink: sink.name, type }, 0);
      for (const source of sink.inputs) {
        this.#written.inc({ sink: sink.name, source }, 0);
        this.#writtenBytes.inc({ sink: sink.name, source }, 0);
      }
    }
    if (options.cluster) {
      this.#cluster = {
        owned: gauge('oktail_cluster_sources_owned', 'Sources whose lease this replica holds.', []),
        renewals: counter('oktail_cluster_lease_renewals_total', 'Leases renewed by this replica.', []),
        lost: counter(
          'oktail_cluster_lease_lost_total',
          'Leases this replica lost (not renewed in time; another replica may hold them).',
          [],
        ),
        takeovers: counter(
          'oktail_cluster_takeovers_total',
          'Sources this replica took over from a replica whose lease expired.',
          [],
        ),
      };
      this.#cluster.owned.set(0);
      for (const c of [this.#cluster.renewals, this.#cluster.lost, this.#cluster.takeovers]) c.inc(0);
      this.readiness.own([]);
    }
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  clusterSourcesOwned(e: { sources: number }): void {
    this.#cluster?.owned.set(e.sources);
  }

  clusterLeasesRenewed(e: { leases: number }): void {
    this.#cluster?.renewals.inc(e.leases);
  }

  clusterLeaseLost(_e: { source: string }): void {
    this.#cluster?.lost.inc();
  }

  clusterTakeover(_e: { source: string; previousOwner: string }): void {
    this.#cluster?.takeovers.inc();
  }

  clusterOwnership(e: { sources: string[] }): void {
    if (this.#cluster) this.readiness.own(e.sources);
  }

  /** Prometheus text exposition of every metric. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  ready(): Readiness {
    return this.readiness.check();
  }

  sourceStarted(e: TelemetryEvent<'sourceStarted'>): void {
    this.#halted.set({ source: e.source }, 0);
    this.#next.sourceStarted(e);
  }

  pageFetched(e: TelemetryEvent<'pageFetched'>): void {
    this.#requests.inc({ source: e.source, status: String(e.status) });
    this.#requestSeconds.observe({ source: e.source }, e.ms / 1000);
    this.#received.inc({ source: e.source }, e.events);
    this.#receivedBytes.inc({ source: e.source }, e.bytes);
    this.#next.pageFetched(e);
  }

  requestFailed(e: TelemetryEvent<'requestFailed'>): void {
    this.#requests.inc({ source: e.source, status: e.status === null ? 'none' : String(e.status) });
    if (e.status === 429) this.#rateLimited.inc({ source: e.source });
    if (e.retryInMs !== null) this.#retries.inc({ source: e.source, reason: e.code });
    this.#next.requestFailed(e);
  }

  rateLimitObserved(e: TelemetryEvent<'rateLimitObserved'>): void {
    this.#rateLimitLimit.set({ source: e.source }, e.limit);
    this.#rateLimitRemaining.set({ source: e.source }, e.remaining);
    this.#rateLimitReset.set({ source: e.source }, Math.round((this.#now() + e.resetInMs) / 1000));
    this.#next.rateLimitObserved(e);
  }

  rateLimitWait(e: TelemetryEvent<'rateLimitWait'>): void {
    this.#rateLimitWait.inc({ source: e.source }, e.waitMs / 1000);
    this.#next.rateLimitWait(e);
  }

  eventsDropped(e: TelemetryEvent<'eventsDropped'>): void {
    // Only the collection script removes events: filtering the operator asked for, never a loss.
    this.#filtered.inc({ source: e.source }, e.events);
    this.#next.eventsDropped(e);
  }

  batchDelivered(e: TelemetryEvent<'batchDelivered'>): void {
    for (const sink of e.sinks) {
      this.#written.inc({ sink, source: e.source }, e.events);
      this.#writtenBytes.inc({ sink, source: e.source }, e.bytes);
    }
    const published = e.newestPublished === null ? NaN : Date.parse(e.newestPublished);
    // Okta's `published` can arrive out of order; the newest seen so far is the position.
    if (!Number.isNaN(published) && published > (this.#newest.get(e.source) ?? -Infinity)) {
      this.#newest.set(e.source, published);
    }
    this.#next.batchDelivered(e);
  }

  sinkRetry(e: TelemetryEvent<'sinkRetry'>): void {
    this.#sinkRetries.inc({ sink: e.sink, type: this.#sinkTypes.get(e.sink) ?? 'unknown', reason: 'write' });
    this.#next.sinkRetry(e);
  }

  sinkRequestSent(e: TelemetryEvent<'sinkRequestSent'>): void {
    const labels = { sink: e.sink, type: e.type };
    this.#sinkSent.inc(labels, e.events);
    this.#sinkSentBytes.inc(labels, e.bytes);
    this.#sinkRequestSeconds.observe(labels, e.ms / 1000);
    this.#next.sinkRequestSent(e);
  }

  sinkRequestFailed(e: TelemetryEvent<'sinkRequestFailed'>): void {
    const labels = { sink: e.sink, type: e.type };
    this.#sinkErrors.inc({ ...labels, kind: e.kind });
    this.#sinkRequestSeconds.observe(labels, e.ms / 1000);
    if (e.retryInMs !== null) this.#sinkRetries.inc({ ...labels, reason: e.reason });
    this.#next.sinkRequestFailed(e);
  }

  sinkRecovered(e: TelemetryEvent<'sinkRecovered'>): void {
    this.#next.sinkRecovered(e);
  }

  sinkInFlight(e: TelemetryEvent<'sinkInFlight'>): void {
    this.#sinkInFlight.set({ sink: e.sink, type: e.type }, e.requests);
    this.#next.sinkInFlight(e);
  }

  checkpointCommitted(e: TelemetryEvent<'checkpointCommitted'>): void {
    this.#commits.inc({ source: e.source });
    this.#commitSeconds.observe({ source: e.source }, e.ms / 1000);
    this.readiness.progressed(e.source);
    this.#next.checkpointCommitted(e);
  }

  cycleFinished(e: TelemetryEvent<'cycleFinished'>): void {
    this.#cycles.inc({ source: e.source });
    this.#lastCycle.set({ source: e.source }, this.#now() / 1000);
    this.readiness.progressed(e.source);
    this.#next.cycleFinished(e);
  }

  scriptError(e: TelemetryEvent<'scriptError'>): void {
    this.#scriptErrors.inc({ source: e.source });
    this.#next.scriptError(e);
  }

  sourceHalted(e: TelemetryEvent<'sourceHalted'>): void {
    this.#halted.set({ source: e.source }, 1);
    this.readiness.halted(e.source, e.code, e.error);
    this.#next.sourceHalted(e);
  }
}
