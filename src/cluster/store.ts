import type pg from 'pg';
import {
  emptyCheckpoint,
  type Checkpoint,
  type CheckpointStore,
  type SourceCheckpoint,
  type TransactionalWrite,
} from '../core/checkpoint.js';
import { OktailError } from '../core/errors.js';
import type { EventBatch, Sink } from '../core/sink.js';
import type { JsonObject } from '../core/json.js';
import { stateError } from './db.js';

/** Who may commit a source: the lease holder, named by node and fence. */
export interface CommitGrant {
  owner: string;
  fence: number;
}

interface Row {
  source: string;
  domain: string;
  state: JsonObject;
  committed_at: Date | string;
}

const iso = (v: Date | string): string => (v instanceof Date ? v.toISOString() : v);

/**
 * The checkpoint in PostgreSQL: one row per source, beside its lease. A replica commits a source only
 * while it holds that source's lease with the fence it was granted; the commit is one UPDATE whose WHERE
 * names both, so a replica that lost the lease (it was frozen, partitioned, or too slow to renew) finds
 * its commit refused and stops that source. There are no sink positions: a local file cannot follow a
 * source to another host, so positional sinks are refused with this backend.
 */
export class PostgresCheckpointStore implements CheckpointStore {
  readonly #pool: pg.Pool;
  readonly #url: string;
  /** The fence this replica holds for a source, or undefined when it holds none (commits refused). */
  readonly #grant: (source: string) => CommitGrant | undefined;

  constructor(pool: pg.Pool, options: { url: string; grant?: (source: string) => CommitGrant | undefined }) {
    this.#pool = pool;
    this.#url = options.url;
    this.#grant = options.grant ?? (() => undefined);
  }

  async load(): Promise<Checkpoint> {
    const cp = emptyCheckpoint();
    let rows: Row[];
    try {
      rows = (
        await this.#pool.query<Row>(
          'SELECT source, domain, state, committed_at FROM oktail_sources WHERE state IS NOT NULL ORDER BY source',
        )
      ).rows;
    } catch (err) {
      throw stateError(this.#url, 'Reading the checkpoint', err);
    }
    for (const r of rows) {
      cp.sources[r.source] = { domain: r.domain, state: r.state, committed_at: iso(r.committed_at) };
    }
    return cp;
  }

  /** One source's committed state, read afresh (another replica may have moved it since start). */
  async loadSource(source: string): Promise<SourceCheckpoint | undefined> {
    try {
      const { rows } = await this.#pool.query<Row>(
        'SELECT source, domain, state, committed_at FROM oktail_sources WHERE source = $1 AND state IS NOT NULL',
        [source],
      );
      const r = rows[0];
      return r ? { domain: r.domain, state: r.state, committed_at: iso(r.committed_at) } : undefined;
    } catch (err) {
      throw stateError(this.#url, `Reading the checkpoint of source ${source}`, err);
    }
  }

  /**
   * Replaces every source's checkpoint (`state import`, `state reset`): the caller holds the leases or
   * knows no replica runs. Leases are left as they are; sources absent from `checkpoint` lose their state.
   */
  async commit(checkpoint: Checkpoint): Promise<void> {
    const client = await this.#connect();
    try {
      await client.query('BEGIN');
      const names = Object.keys(checkpoint.sources);
      await client.query(
        'UPDATE oktail_sources SET domain = NULL, state = NULL, committed_at = NULL WHERE NOT (source = ANY($1::text[]))',
        [names],
      );
      for (const [source, entry] of Object.entries(checkpoint.sources)) {
        await client.query(
          'INSERT INTO oktail_sources (source, domain, state, committed_at) VALUES ($1, $2, $3, $4) ' +
            'ON CONFLICT (source) DO UPDATE SET domain = EXCLUDED.domain, state = EXCLUDED.state, ' +
            'committed_at = EXCLUDED.committed_at',
          [source, entry.domain, JSON.stringify(entry.state), entry.committed_at],
        );
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw stateError(this.#url, 'Writing the checkpoint', err);
    } finally {
      client.release();
    }
  }

  /**
   * Commits one source, conditional on this replica's lease and fence; `writes` run in the same transaction
   * first (a postgres sink in this database), so events and checkpoint land together or not at all.
   * Rejects with LEASE_LOST when the lease is gone: nothing of the transaction remains.
   */
  async commitSource(
    source: string,
    entry: SourceCheckpoint | null,
    writes: readonly TransactionalWrite[] = [],
  ): Promise<void> {
    const grant = this.#grant(source);
    if (!grant) throw lost(source, 'it holds no lease on it');
    const client = await this.#connect();
    try {
      await client.query('BEGIN');
      // First, so the row lock is held while the sink writes: a takeover waits for this transaction.
      const { rowCount } = await client.query(
        entry === null
          ? 'UPDATE oktail_sources SET domain = NULL, state = NULL, committed_at = NULL ' +
              'WHERE source = $1 AND owner = $2 AND fence = $3'
          : 'UPDATE oktail_sources SET domain = $4, state = $5, committed_at = $6 ' +
              'WHERE source = $1 AND owner = $2 AND fence = $3',
        entry === null
          ? [source, grant.owner, grant.fence]
          : [source, grant.owner, grant.fence, entry.domain, JSON.stringify(entry.state), entry.committed_at],
      );
      if (rowCount !== 1) {
        await client.query('ROLLBACK');
        throw lost(source, `another replica took it over (fence ${grant.fence} is no longer current)`);
      }
      for (const write of writes) await write(client);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (err instanceof OktailError) throw err;
      throw stateError(this.#url, `Committing source ${source}`, err);
    } finally {
      client.release();
    }
  }

  /** A postgres sink in this same database (host, port, database and user) writes inside the commit. */
  transactionalWrite(sink: Sink, batch: EventBatch): TransactionalWrite | undefined {
    const t = sink.transactional;
    if (!t || !sameDatabase(t.url, this.#url)) return undefined;
    return (tx) => t.write(batch, tx);
  }

  async #connect(): Promise<pg.PoolClient> {
    try {
      return await this.#pool.connect();
    } catch (err) {
      throw stateError(this.#url, 'Connecting', err);
    }
  }
}

function lost(source: string, why: string): OktailError {
  return new OktailError(
    'LEASE_LOST',
    `This replica may no longer commit source ${source}: ${why}; it stops collecting it`,
    false,
  );
}

/** Whether two postgres URLs reach the same database as the same role (the password aside). */
export function sameDatabase(a: string, b: string): boolean {
  const key = (url: string): string | null => {
    try {
      const u = new URL(url);
      return [
        u.hostname.toLowerCase(),
        u.port || '5432',
        decodeURIComponent(u.pathname),
        decodeURIComponent(u.username),
      ].join('\0');
    } catch {
      return null;
    }
  };
  const ka = key(a);
  return ka !== null && ka === key(b);
}
