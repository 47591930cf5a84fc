import type { LineDestination } from './logger.js';
import type { TelemetryEvent, TelemetrySink } from './telemetry.js';

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** The terminal (stderr). Log lines must go through `logDestination()` so they print above the lines. */
  stream: ProgressStream;
  now?: () => number;
  /** A source gets a line only while it is at least this far behind; smaller lags are not a backfill. */
  minLagMs?: number;
  /** Redraw at most this often. */
  redrawMs?: number;
  /** Rates are measured over this much recent time. */
  windowMs?: number;
}

interface Sample {
  t: number;
  events: number;
  newestMs: number;
}

interface SourceProgress {
  active: boolean;
  newestMs: number | null;
  events: number;
  samples: Sample[];
}

export interface ProgressSnapshot {
  source: string;
  newestMs: number;
  lagMs: number;
  eventsPerSec: number | null;
  /** How many milliseconds of `published` time are collected per millisecond of wall time. */
  catchUpSpeed: number | null;
}

/**
 * Time left until a source reaches "now". While the collector reads `speed` ms of log per ms, the lag
 * shrinks by `speed - 1` ms per ms (now keeps moving). Null when the source is not catching up.
 */
export function estimateRemainingMs(lagMs: number, catchUpSpeed: number | null): number | null {
  if (catchUpSpeed === null || !(catchUpSpeed > 1)) return null;
  return lagMs / (catchUpSpeed - 1);
}

/** 42s, 3m 05s, 4h 12m, 3d 4h. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function formatRate(perSec: number | null): string {
  if (perSec === null) return '- events/s';
  if (perSec >= 100) return `${Math.round(perSec).toLocaleString('en-US')} events/s`;
  return `${perSec.toFixed(1)} events/s`;
}

export function progressLine(p: ProgressSnapshot): string {
  const at = new Date(p.newestMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const eta = estimateRemainingMs(p.lagMs, p.catchUpSpeed);
  return (
    `${p.source}: at ${at}, ${formatRate(p.eventsPerSec)}, ` +
    `${formatDuration(p.lagMs)} behind, ${eta === null ? 'not catching up' : `about ${formatDuration(eta)} left`}`
  );
}

/** Live lines need a terminal, and events written to the same terminal on stdout would tear them. */
export function progressWanted(options: {
  stderr: { isTTY?: boolean };
  stdout: { isTTY?: boolean };
  quiet: boolean;
  stdoutSink: boolean;
}): boolean {
  if (options.quiet || options.stderr.isTTY !== true) return false;
  return !(options.stdoutSink && options.stdout.isTTY === true);
}

/**
 * A live line per source that is backfilling or catching up: the newest delivered `published`, the
 * event rate and an estimate of the time left. Fed by the telemetry catalogue like the log and metrics.
 */
export class ProgressTelemetry implements TelemetrySink {
  readonly #stream: ProgressStream;
  readonly #now: () => number;
  readonly #minLagMs: number;
  readonly #redrawMs: number;
  readonly #windowMs: number;
  readonly #sources = new Map<string, SourceProgress>();
  #timer: NodeJS.Timeout | null = null;
  /** Lines currently on screen; the cursor sits at the end of the last one. */
  #drawn = 0;
  #lines: string[] = [];
  #stopped = false;

  constructor(options: ProgressOptions) {
    this.#stream = options.stream;
    this.#now = options.now ?? Date.now;
    this.#minLagMs = options.minLagMs ?? 60_000;
    this.#redrawMs = options.redrawMs ?? 500;
    this.#windowMs = options.windowMs ?? 10_000;
  }

  /** A log destination that prints each line above the progress lines instead of through them. */
  logDestination(): LineDestination {
    return {
      write: (line: string) => {
        if (this.#drawn === 0) return this.#stream.write(line);
        this.#erase();
        this.#stream.write(line);
        this.#draw();
        return true;
      },
    };
  }

  /** The current lines, for tests and the renderer. */
  snapshot(): ProgressSnapshot[] {
    const now = this.#now();
    const out: ProgressSnapshot[] = [];
    for (const [source, p] of this.#sources) {
      if (!p.active || p.newestMs === null) continue;
      const first = p.samples[0];
      const span = first ? now - first.t : 0;
      const ok = first !== undefined && p.samples.length > 1 && span > 0;
      out.push({
        source,
        newestMs: p.newestMs,
        lagMs: Math.max(0, now - p.newestMs),
        eventsPerSec: ok ? ((p.events - first.events) * 1000) / span : null,
        catchUpSpeed: ok ? (p.newestMs - first.newestMs) / span : null,
      });
    }
    return out;
  }

  /** Removes the lines and stops redrawing. Calling it twice is fine. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#erase();
  }

  batchDelivered(e: TelemetryEvent<'batchDelivered'>): void {
    if (this.#stopped) return;
    const now = this.#now();
    const p = this.#source(e.source);
    const published = e.newestPublished === null ? NaN : Date.parse(e.newestPublished);
    if (!Number.isNaN(published) && published > (p.newestMs ?? -Infinity)) p.newestMs = published;
    if (p.newestMs === null) return;
    if (!p.active && now - p.newestMs < this.#minLagMs) return;
    p.active = true;
    p.events += e.events;
    p.samples.push({ t: now, events: p.events, newestMs: p.newestMs });
    // Keep one sample older than the window as the baseline of the rate.
    while (p.samples.length > 2 && p.samples[1]!.t <= now - this.#windowMs) p.samples.shift();
    this.#timer ??= setInterval(() => this.#redraw(), this.#redrawMs).unref();
  }

  cycleFinished(e: TelemetryEvent<'cycleFinished'>): void {
    this.#finish(e.source);
  }

  sourceHalted(e: TelemetryEvent<'sourceHalted'>): void {
    this.#finish(e.source);
  }

  scriptError(e: TelemetryEvent<'scriptError'>): void {
    this.#finish(e.source);
  }

  sourceStarted(): void {}
  pageFetched(): void {}
  requestFailed(): void {}
  rateLimitObserved(): void {}
  rateLimitWait(): void {}
  eventsDropped(): void {}
  sinkRetry(): void {}
  checkpointCommitted(): void {}
  sinkRequestSent(): void {}
  sinkRequestFailed(): void {}
  sinkRecovered(): void {}
  sinkInFlight(): void {}

  #source(name: string): SourceProgress {
    let p = this.#sources.get(name);
    if (!p) {
      p = { active: false, newestMs: null, events: 0, samples: [] };
      this.#sources.set(name, p);
    }
    return p;
  }

  /** The cycle's summary goes to the log; its progress line goes away first. */
  #finish(source: string): void {
    const p = this.#sources.get(source);
    if (!p?.active) return;
    p.active = false;
    p.events = 0;
    p.samples = [];
    this.#redraw();
    if (![...this.#sources.values()].some((s) => s.active) && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  #redraw(): void {
    if (this.#stopped) return;
    // A pseudo-terminal without a window size reports 0 columns.
    const width = Math.max(20, (this.#stream.columns || 100) - 1);
    this.#erase();
    this.#lines = this.snapshot().map((s) => truncate(progressLine(s), width));
    this.#draw();
  }

  #draw(): void {
    if (this.#stopped || this.#lines.length === 0) return;
    this.#stream.write(this.#lines.join('\n'));
    this.#drawn = this.#lines.length;
  }

  #erase(): void {
    if (this.#drawn === 0) return;
    // To the start of the first line (CSI 0 A would still move one line up), then clear below.
    const up = this.#drawn > 1 ? `\x1b[${this.#drawn - 1}A` : '';
    this.#stream.write(`\r${up}\x1b[J`);
    this.#drawn = 0;
  }
}

function truncate(line: string, width: number): string {
  return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
}
