import type pg from 'pg';
import { stateError } from './db.js';

/** A lease this replica holds. */
export interface HeldLease {
  source: string;
  /** Grows on every takeover; every commit names it, so a replica that lost the lease cannot commit. */
  fence: number;
  /**
   * Until when (performance.now() of this process) the lease surely still holds: the time the request that
   * granted or renewed it was sent, plus lease_secs. The database started its count later than that, so
   * this errs on the safe side; a process frozen past it must hear from the database before polling again.
   */
  validUntil: number;
}

export interface AcquireResult {
  fence: number;
  /** The node whose expired lease this replaced (null when the source was free or new). */
  previousOwner: string | null;
}

export interface NodeRow {
  node_id: string;
  started_at: string;
  heartbeat_at: string;
  expires_at: string;
}

export interface SourceRow {
  source: string;
  domain: string | null;
  committed_at: string | null;
  owner: string | null;
  fence: number;
  lease_expires_at: string | null;
  /** Computed by the database: a lease whose expiry passed is free to take, whatever its owner column says. */
  live: boolean;
}

/**
 * Leases on sources and the replicas' heartbeats, in PostgreSQL. Every expiry is computed and compared by
 * the database (`now()`), never by a replica's clock, so replicas with skewed clocks still agree on who
 * owns what. Row locks serialize a takeover against a commit or another takeover of the same source.
 */
export class LeaseStore {
  readonly #pool: pg.Pool;
  readonly #url: string;
  readonly nodeId: string;
  readonly leaseMs: number;

  constructor(pool: pg.Pool, options: { url: string; nodeId: string; leaseSecs: number }) {
    this.#pool = pool;
    this.#url = options.url;
    this.nodeId = options.nodeId;
    this.leaseMs = options.leaseSecs * 1000;
  }

  get #interval(): string {
    return `${this.leaseMs} milliseconds`;
  }

  async #query<R extends pg.QueryResultRow>(what: string, sql: string, params: unknown[]): Promise<R[]> {
    try {
      return (await this.#pool.query<R>(sql, params)).rows;
    } catch (err) {
      throw stateError(this.#url, what, err);
    }
  }

  /** Records this replica as live for one more lease period; returns how many replicas are live now. */
  async heartbeat(): Promise<number> {
    const rows = await this.#query<{ live: string }>(
      'Recording the heartbeat',
      'WITH beat AS (INSERT INTO oktail_nodes (node_id, expires_at) VALUES ($1, now() + $2::interval) ' +
        'ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at ' +
        'RETURNING node_id) ' +
        'SELECT (SELECT count(*) FROM oktail_nodes WHERE expires_at > now() AND node_id <> $1) + 1 AS live',
      [this.nodeId, this.#interval],
    );
    // Dead replicas' rows are kept for a while for `cluster status`, then swept by whoever beats.
    await this.#query(
      'Sweeping old heartbeats',
      "DELETE FROM oktail_nodes WHERE expires_at < now() - interval '1 day'",
      [],
    );
    return Number(rows[0]?.live ?? 1);
  }

  /** Leaves the cluster: the others stop counting this replica at once (SIGTERM). */
  async leave(): Promise<void> {
    await this.#query('Leaving the cluster', 'DELETE FROM oktail_nodes WHERE node_id = $1', [this.nodeId]);
  }

  /**
   * Takes a source's lease if it is free: never leased, released, or expired by the database's clock.
   * Returns null when a live owner holds it. Safe under any race: the row lock lets one taker win.
   */
  async acquire(source: string): Promise<(AcquireResult & { lease: HeldLease }) | null> {
    const sent = performance.now();
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw stateError(this.#url, 'Connecting', err);
    }
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO oktail_sources (source) VALUES ($1) ON CONFLICT (source) DO NOTHING', [
        source,
      ]);
      const { rows } = await client.query<{ owner: string | null; live: boolean }>(
        'SELECT owner, coalesce(lease_expires_at > now(), false) AS live FROM oktail_sources ' +
          'WHERE source = $1 FOR UPDATE',
        [source],
      );
      const row = rows[0];
      if (!row || (row.owner !== null && row.live)) {
        await client.query('ROLLBACK');
        return null;
      }
      const { rows: taken } = await client.query<{ fence: string }>(
        'UPDATE oktail_sources SET owner = $2, fence = fence + 1, lease_expires_at = now() + $3::interval ' +
          'WHERE source = $1 RETURNING fence',
        [source, this.nodeId, this.#interval],
      );
      await client.query('COMMIT');
      const fence = Number(taken[0]!.fence);
      return {
        fence,
        previousOwner: row.owner,
        lease: { source, fence, validUntil: sent + this.leaseMs },
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw stateError(this.#url, `Taking the lease of source ${source}`, err);
    } finally {
      client.release();
    }
  }

  /**
   * Extends the leases still held with their fence (whether or not their expiry passed meanwhile: an
   * unchanged fence means no one took them). Returns the renewed leases; the others are lost.
   */
  async renew(leases: readonly HeldLease[]): Promise<HeldLease[]> {
    if (leases.length === 0) return [];
    const sent = performance.now();
    const rows = await this.#query<{ source: string; fence: string }>(
      'Renewing leases',
      'UPDATE oktail_sources AS s SET lease_expires_at = now() + $4::interval ' +
        'FROM unnest($1::text[], $2::bigint[]) AS l(source, fence) ' +
        'WHERE s.source = l.source AND s.fence = l.fence AND s.owner = $3 RETURNING s.source, s.fence',
      [leases.map((l) => l.source), leases.map((l) => l.fence), this.nodeId, this.#interval],
    );
    return rows.map((r) => ({ source: r.source, fence: Number(r.fence), validUntil: sent + this.leaseMs }));
  }

  /** Gives a lease up so another replica can take it at once; false when it was no longer held. */
  async release(lease: Pick<HeldLease, 'source' | 'fence'>): Promise<boolean> {
    const rows = await this.#query(
      `Releasing the lease of source ${lease.source}`,
      'UPDATE oktail_sources SET owner = NULL, lease_expires_at = NULL ' +
        'WHERE source = $1 AND owner = $2 AND fence = $3 RETURNING source',
      [lease.source, this.nodeId, lease.fence],
    );
    return rows.length > 0;
  }

  /** Sources among `names` that no live lease holds. */
  async free(names: readonly string[]): Promise<string[]> {
    const rows = await this.#query<{ source: string }>(
      'Listing free sources',
      'SELECT n.source FROM unnest($1::text[]) AS n(source) LEFT JOIN oktail_sources s USING (source) ' +
        'WHERE s.owner IS NULL OR s.lease_expires_at IS NULL OR s.lease_expires_at <= now()',
      [names],
    );
    return rows.map((r) => r.source);
  }

  /** What `cluster status` shows: every replica seen lately and every source's lease. */
  async status(): Promise<{ now: string; nodes: (NodeRow & { live: boolean })[]; sources: SourceRow[] }> {
    const [now] = await this.#query<{ now: Date }>('Reading the clock', 'SELECT now() AS now', []);
    const nodes = await this.#query<NodeRow & { live: boolean }>(
      'Listing replicas',
      'SELECT node_id, started_at, heartbeat_at, expires_at, expires_at > now() AS live FROM oktail_nodes ' +
        'ORDER BY node_id',
      [],
    );
    const sources = await this.#query<SourceRow & { fence: string }>(
      'Listing leases',
      'SELECT source, domain, committed_at, owner, fence, lease_expires_at, ' +
        'coalesce(owner IS NOT NULL AND lease_expires_at > now(), false) AS live FROM oktail_sources ORDER BY source',
      [],
    );
    const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : (v as string | null));
    return {
      now: iso(now!.now)!,
      nodes: nodes.map((n) => ({
        ...n,
        started_at: iso(n.started_at)!,
        heartbeat_at: iso(n.heartbeat_at)!,
        expires_at: iso(n.expires_at)!,
      })),
      sources: sources.map((s) => ({
        ...s,
        fence: Number(s.fence),
        committed_at: iso(s.committed_at),
        lease_expires_at: iso(s.lease_expires_at),
      })),
    };
  }
}
