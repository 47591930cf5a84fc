import { hostname } from 'node:os';
import type pg from 'pg';
import type { PostgresStateConfig } from '../config/schema.js';
import { OktailError } from '../core/errors.js';
import { describeUrl, migrateState, statePool } from './db.js';
import { LeaseStore, type HeldLease } from './leases.js';
import { PostgresCheckpointStore } from './store.js';

/**
 * The state database as the `state` and `cluster` commands use it: one connection, no replica running
 * here. A command that changes a source's checkpoint first takes that source's lease like a replica
 * would, so it cannot race a replica collecting it; it refuses when a live replica holds it.
 */
export class StateAdmin {
  readonly pool: pg.Pool;
  readonly leases: LeaseStore;
  readonly store: PostgresCheckpointStore;
  readonly where: string;
  readonly #held = new Map<string, HeldLease>();

  private constructor(state: PostgresStateConfig, pool: pg.Pool, command: string) {
    this.pool = pool;
    this.where = `the state database at ${describeUrl(state.url)}`;
    const nodeId = `${command.replace(/\s+/g, '-')}@${hostname()}-${process.pid}`;
    this.leases = new LeaseStore(pool, { url: state.url, nodeId, leaseSecs: state.lease_secs });
    this.store = new PostgresCheckpointStore(pool, {
      url: state.url,
      grant: (source) => {
        const lease = this.#held.get(source);
        return lease ? { owner: nodeId, fence: lease.fence } : undefined;
      },
    });
  }

  static async open(state: PostgresStateConfig, command: string): Promise<StateAdmin> {
    const pool = statePool(state.url, 2);
    try {
      await migrateState(pool, state.url);
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new StateAdmin(state, pool, command);
  }

  /**
   * Takes the leases of `sources`; throws STATE_LOCKED naming the replica when a live one holds any (the
   * leases taken so far are given back).
   */
  async lock(sources: readonly string[]): Promise<void> {
    for (const source of sources) {
      const taken = await this.leases.acquire(source);
      if (!taken) {
        const { sources: rows } = await this.leases.status();
        const row = rows.find((r) => r.source === source);
        await this.unlock();
        throw new OktailError(
          'STATE_LOCKED',
          `Source ${source} is being collected by replica ${row?.owner ?? '?'} (lease until ` +
            `${row?.lease_expires_at ?? '?'}); stop the replicas that run it (or scale them to 0) and try ` +
            'again: changing its checkpoint under a running owner would be overwritten by its next commit',
        );
      }
      this.#held.set(source, taken.lease);
    }
  }

  /** Gives back every lease taken, so replicas pick the sources up at once. */
  async unlock(): Promise<void> {
    const held = [...this.#held.values()];
    this.#held.clear();
    await Promise.allSettled(held.map((l) => this.leases.release(l)));
  }

  async close(): Promise<void> {
    await this.unlock();
    await this.pool.end();
  }
}
