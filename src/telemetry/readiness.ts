export interface ReadinessSource {
  name: string;
  /**
   * How long a source may go without finishing a cycle or committing a page before it counts as stuck.
   * Also the grace period for a source that has not finished its first cycle.
   */
  staleAfterMs: number;
}

export interface SourceReadiness {
  source: string;
  ready: boolean;
  state: 'starting' | 'running' | 'stale' | 'halted';
  /** ISO time of the last finished cycle or committed page. */
  last_progress_at: string | null;
  reason?: string;
}

export interface Readiness {
  ready: boolean;
  sources: SourceReadiness[];
}

interface Tracked {
  staleAfterMs: number;
  /** When this process started collecting the source (its grace period before a first cycle). */
  startedMs: number;
  lastProgressMs: number | null;
  halted: { code: string; error: string } | null;
}

/**
 * Answers "is every source running and keeping up?". Progress is a finished cycle or a committed page:
 * a backfill's first cycle can take hours, and it is healthy as long as pages keep being committed.
 */
export class ReadinessTracker {
  readonly #sources = new Map<string, Tracked>();
  readonly #now: () => number;
  /** On a replica sharing its sources: the ones it collects now; null: every configured source. */
  #owned: Set<string> | null = null;

  constructor(sources: readonly ReadinessSource[], now: () => number = Date.now) {
    this.#now = now;
    const startedMs = now();
    for (const s of sources) {
      this.#sources.set(s.name, {
        staleAfterMs: s.staleAfterMs,
        startedMs,
        lastProgressMs: null,
        halted: null,
      });
    }
  }

  /**
   * A replica answers only for the sources it owns: one that owns none is a healthy standby (ready). A
   * source it takes (again) starts afresh, with a new grace period for its first cycle.
   */
  own(names: readonly string[]): void {
    const next = new Set(names);
    for (const name of next) {
      const s = this.#sources.get(name);
      if (s && !this.#owned?.has(name)) {
        s.startedMs = this.#now();
        s.lastProgressMs = null;
        s.halted = null;
      }
    }
    this.#owned = next;
  }

  /** A source started at run time (the console): its grace period for a first cycle starts now. */
  track(source: ReadinessSource): void {
    this.#sources.set(source.name, {
      staleAfterMs: source.staleAfterMs,
      startedMs: this.#now(),
      lastProgressMs: null,
      halted: null,
    });
  }

  /** A source stopped at run time (deleted or disabled in the console) no longer counts. */
  untrack(name: string): void {
    this.#sources.delete(name);
  }

  progressed(source: string): void {
    const s = this.#sources.get(source);
    if (s) s.lastProgressMs = this.#now();
  }

  halted(source: string, code: string, error: string): void {
    const s = this.#sources.get(source);
    if (s) s.halted = { code, error };
  }

  check(): Readiness {
    const now = this.#now();
    const tracked = [...this.#sources].filter(([name]) => this.#owned === null || this.#owned.has(name));
    const sources = tracked.map(([source, s]): SourceReadiness => {
      const last_progress_at = s.lastProgressMs === null ? null : new Date(s.lastProgressMs).toISOString();
      if (s.halted) {
        return {
          source,
          ready: false,
          state: 'halted',
          last_progress_at,
          reason: `halted: ${s.halted.code}: ${s.halted.error}`,
        };
      }
      const since = s.lastProgressMs ?? s.startedMs;
      const secs = Math.round((now - since) / 1000);
      if (now - since <= s.staleAfterMs) {
        return {
          source,
          ready: true,
          state: s.lastProgressMs === null ? 'starting' : 'running',
          last_progress_at,
        };
      }
      const limit = Math.round(s.staleAfterMs / 1000);
      return {
        source,
        ready: false,
        state: 'stale',
        last_progress_at,
        reason:
          s.lastProgressMs === null
            ? `no cycle finished in the ${secs} s since start (limit ${limit} s)`
            : `no cycle finished and no page committed for ${secs} s (limit ${limit} s)`,
      };
    });
    return { ready: sources.every((s) => s.ready), sources };
  }
}
