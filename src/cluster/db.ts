import { hostname } from 'node:os';
import pg from 'pg';
import { OktailError, errorMessage } from '../core/errors.js';
import { describeUrl } from '../sinks/postgres/driver.js';
import { migrate } from './migrations.js';

export { describeUrl };

/** The `state` block of the config with `backend: postgres`. */
export interface ClusterSettings {
  url: string;
  leaseSecs: number;
  nodeId: string;
}

/** The default node id: unique per process on a host, readable in `cluster status`. */
export function defaultNodeId(): string {
  return `${hostname()}-${process.pid}`;
}

/** A pool on the state database; its errors never carry the URL (it holds the password). */
export function statePool(url: string, max = 4): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    application_name: 'oktail-state',
    connectionTimeoutMillis: 15_000,
    idleTimeoutMillis: 60_000,
  });
  // A dropped idle connection surfaces here; the next query opens a new one.
  pool.on('error', () => {});
  return pool;
}

/** A database failure as an OktailError that names the server but not the password. */
export function stateError(url: string, what: string, err: unknown): OktailError {
  if (err instanceof OktailError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const detail = typeof code === 'string' ? `${code}: ${errorMessage(err)}` : errorMessage(err);
  return new OktailError(
    'STATE_UNAVAILABLE',
    `${what} in the state database at ${describeUrl(url)} failed (${detail})`,
    true,
    { cause: err },
  );
}

/** Creates or upgrades oktail's tables; safe when several replicas start at once. */
export async function migrateState(pool: pg.Pool, url: string): Promise<number[]> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw stateError(url, 'Connecting', err);
  }
  try {
    return await migrate(client);
  } catch (err) {
    throw stateError(url, 'Creating or upgrading the schema', err);
  } finally {
    client.release();
  }
}
