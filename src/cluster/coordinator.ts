import { createHash } from 'node:crypto';
import { OktailError, errorMessage } from '../core/errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { HeldLease, LeaseStore } from './leases.js';
import type { CommitGrant } from './store.js';

/** What the coordinator needs from the pipeline: sources come and go while it runs. */
export interface SourceHost {
  /** Creates the source (client, script) and starts collecting it. */
  start(name: string): Promise<void>;
  /** Stops the source after the page in delivery is committed, and releases what it holds. */
  stop(name: string): Promise<void>;
}

/** Cluster happenings for metrics; each is also logged by the coordinator. */
export interface ClusterTelemetry {
  clusterSourcesOwned(e: { sources: number }): void;
  clusterLeasesRenewed(e: { leases: number }): void;
  clusterLeaseLost(e: { source: string }): void;
  clusterTakeover(e: { source: string; previousOwner: string }): void;
  /** The sources this replica collects now (readiness covers only these). */
  clusterOwnership(e: { sources: string[] }): void;
}

export interface CoordinatorOptions {
  leases: LeaseStore;
  host: SourceHost;
  /** Every configured source name: all replicas run the same config. */
  sources: readonly string[];
  log: Logger;
  telemetry?: ClusterTelemetry;
  /** How often leases are renewed and the balance checked; default a third of the lease. */
  tickMs?: number;
}

interface Owned {
  lease: HeldLease;
  phase: 'starting' | 'running' | 'releasing';
}

/**
 * Decides which sources this replica collects. Every tick it beats its heartbeat, renews its leases (a
 * lease it failed to renew is lost: the source stops at once) and balances: with N live replicas and S
 * sources it aims at ceil(S / N) sources, taking free ones when below and handing extra ones over when
 * above (finish the page in delivery, commit, release the lease) so a joining replica gets its share
 * within a couple of lease periods.
 */
export class Coordinator {
  readonly #o: CoordinatorOptions;
  readonly #owned = new Map<string, Owned>();
  readonly #tickMs: number;
  #live = 1;
  #timer: NodeJS.Timeout | null = null;
  #renewing: Promise<void> | null = null;
  #balancing: Promise<void> | null = null;
  #stopped = false;
  /** Shutdown began: no source is taken any more; leases are still renewed while the pipeline drains. */
  #draining = false;
  #pending = new Set<Promise<void>>();

  constructor(options: CoordinatorOptions) {
    this.#o = options;
    this.#tickMs = options.tickMs ?? Math.max(200, Math.floor(options.leases.leaseMs / 3));
  }

  get nodeId(): string {
    return this.#o.leases.nodeId;
  }

  /** Sources this replica holds a lease on (including ones being started or handed over). */
  owned(): string[] {
    return [...this.#owned.keys()].sort();
  }

  /** The commit permission for a source: this node and the fence it was granted, while it holds the lease. */
  grant(source: string): CommitGrant | undefined {
    const owned = this.#owned.get(source);
    return owned ? { owner: this.nodeId, fence: owned.lease.fence } : undefined;
  }

  /**
   * Before each request to an org: resolves when the lease surely holds. A process that was frozen past its
   * lease (SIGSTOP, a paused VM) asks the database first, and stops the source if another replica took it.
   */
  async ensureLease(source: string): Promise<void> {
    let owned = this.#owned.get(source);
    if (owned && performance.now() < owned.lease.validUntil) return;
    if (owned) {
      await this.#renew().catch(() => undefined);
      owned = this.#owned.get(source);
      if (owned && performance.now() < owned.lease.validUntil) return;
    }
    throw new OktailError(
      'LEASE_LOST',
      `This replica no longer holds the lease of source ${source}; it stops collecting it`,
      false,
    );
  }

  /** Joins the cluster and starts ticking; the first balance runs at once. */
  async start(): Promise<void> {
    this.#live = await this.#o.leases.heartbeat();
    this.#o.log.info(
      { node: this.nodeId, live_replicas: this.#live, sources: this.#o.sources.length },
      'Joined the cluster.',
    );
    this.#schedule();
    await this.#balance();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.#tick().finally(() => this.#schedule());
    }, this.#tickMs);
  }

  async #tick(): Promise<void> {
    try {
      await this.#renew();
    } catch (err) {
      this.#o.log.warn({ error: errorMessage(err) }, 'Renewing the leases failed; will retry.');
      // Unreachable database: once a lease may have expired there, polling its org could overlap another
      // replica's, so the source stops here until the lease is taken again.
      const now = performance.now();
      for (const [name, owned] of this.#owned) if (owned.lease.validUntil <= now) this.#lose(name);
      return;
    }
    this.#balancing ??= this.#balance()
      .catch((err: unknown) => this.#o.log.warn({ error: errorMessage(err) }, 'Balancing sources failed.'))
      .finally(() => (this.#balancing = null));
  }

  /** Heartbeat and renewal, one at a time: a frozen process's overdue tick and its sources share one. */
  #renew(): Promise<void> {
    this.#renewing ??= (async () => {
      this.#live = await this.#o.leases.heartbeat();
      const held = [...this.#owned.values()].map((o) => o.lease);
      const renewed = await this.#o.leases.renew(held);
      const kept = new Map(renewed.map((l) => [l.source, l]));
      for (const lease of held) {
        const owned = this.#owned.get(lease.source);
        if (!owned || owned.lease.fence !== lease.fence) continue;
        const fresh = kept.get(lease.source);
        if (fresh) owned.lease = fresh;
        else this.#lose(lease.source);
      }
      if (renewed.length > 0) this.#o.telemetry?.clusterLeasesRenewed({ leases: renewed.length });
    })().finally(() => (this.#renewing = null));
    return this.#renewing;
  }

  /** The lease is gone (another replica holds it): stop the source without committing anything more. */
  #lose(name: string): void {
    if (!this.#owned.delete(name)) return;
    this.#o.log.warn({ source: name, node: this.nodeId }, 'Lost the lease of a source; stopping it here.');
    this.#o.telemetry?.clusterLeaseLost({ source: name });
    this.#ownershipChanged();
    this.#track(
      this.#o.host.stop(name).catch((err: unknown) => {
        this.#o.log.warn({ source: name, error: errorMessage(err) }, 'Stopping a lost source failed.');
      }),
    );
  }

  /** Shutdown began: stop taking or handing over sources; keep renewing until `stop`. */
  drain(): void {
    this.#draining = true;
  }

  async #balance(): Promise<void> {
    if (this.#stopped || this.#draining) return;
    const { sources, leases } = this.#o;
    const target = Math.ceil(sources.length / Math.max(1, this.#live));
    const mine = [...this.#owned].filter(([, o]) => o.phase !== 'releasing').map(([name]) => name);
    if (mine.length > target) {
      // Hand over the ones this replica would pick last, so the choice is stable from tick to tick.
      const extra = this.#byPreference(mine).slice(target);
      await Promise.all(extra.map((name) => this.#handOver(name)));
      return;
    }
    if (mine.length === target) return;
    const free = await leases.free(sources.filter((s) => !this.#owned.has(s)));
    for (const name of this.#byPreference(free)) {
      if (this.#stopped || this.#draining || this.#ownedCount() >= target) break;
      const taken = await leases.acquire(name);
      if (!taken) continue;
      if (this.#stopped || this.#draining) {
        await leases.release(taken.lease);
        break;
      }
      this.#owned.set(name, { lease: taken.lease, phase: 'starting' });
      if (taken.previousOwner !== null) {
        this.#o.log.info(
          { source: name, previous_owner: taken.previousOwner, fence: taken.fence },
          'Took over a source whose lease expired.',
        );
        this.#o.telemetry?.clusterTakeover({ source: name, previousOwner: taken.previousOwner });
      } else {
        this.#o.log.info({ source: name, fence: taken.fence }, 'Took the lease of a source.');
      }
      this.#ownershipChanged();
      try {
        await this.#o.host.start(name);
        const owned = this.#owned.get(name);
        if (owned && owned.lease.fence === taken.fence) owned.phase = 'running';
      } catch (err) {
        this.#o.log.warn(
          { source: name, error: errorMessage(err) },
          'Starting a source failed; releasing it.',
        );
        this.#owned.delete(name);
        this.#ownershipChanged();
        await this.#o.host.stop(name).catch(() => undefined);
        await leases.release(taken.lease).catch(() => undefined);
      }
    }
  }

  #ownedCount(): number {
    return [...this.#owned.values()].filter((o) => o.phase !== 'releasing').length;
  }

  /**
   * Rendezvous order: each replica prefers a different permutation of the sources, so replicas starting
   * together mostly reach for different ones instead of queueing on the same rows.
   */
  #byPreference(names: readonly string[]): string[] {
    const score = (name: string) =>
      createHash('sha1').update(`${this.nodeId}\0${name}`).digest().readUInt32BE(0);
    return [...names].sort((a, b) => score(a) - score(b) || a.localeCompare(b));
  }

  /** A clean hand-over: finish and commit the page in delivery, then free the lease for another replica. */
  async #handOver(name: string): Promise<void> {
    const owned = this.#owned.get(name);
    if (!owned || owned.phase === 'releasing') return;
    owned.phase = 'releasing';
    this.#o.log.info(
      { source: name, live_replicas: this.#live },
      'Handing a source over to balance the cluster.',
    );
    try {
      await this.#o.host.stop(name);
    } finally {
      const current = this.#owned.get(name);
      if (current === owned) {
        this.#owned.delete(name);
        this.#ownershipChanged();
        await this.#o.leases.release(owned.lease).catch((err: unknown) => {
          this.#o.log.warn(
            { source: name, error: errorMessage(err) },
            'Releasing a lease failed; it expires.',
          );
        });
      }
    }
  }

  #ownershipChanged(): void {
    const names = this.owned();
    this.#o.telemetry?.clusterSourcesOwned({ sources: names.length });
    this.#o.telemetry?.clusterOwnership({ sources: names });
  }

  #track(p: Promise<void>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  /**
   * Leaves the cluster: called once the pipeline stopped (every source committed its last page). Frees
   * every lease and the heartbeat at once, so the others take the sources over without waiting.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#balancing?.catch(() => undefined);
    await Promise.allSettled([...this.#pending]);
    const held = [...this.#owned.values()].map((o) => o.lease);
    this.#owned.clear();
    await Promise.allSettled(held.map((l) => this.#o.leases.release(l)));
    await this.#o.leases.leave().catch((err: unknown) => {
      this.#o.log.warn({ error: errorMessage(err) }, 'Leaving the cluster failed; the heartbeat expires.');
    });
  }
}
