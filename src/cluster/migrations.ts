import type pg from 'pg';

/**
 * The schema oktail keeps in the state database, one step per version. A step is applied once, in order,
 * in the same transaction as the row recording its version, so a crash mid-way leaves the previous
 * version intact. Released steps never change: a new need is a new step.
 */
export const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE oktail_sources (
        source text PRIMARY KEY,
        domain text,
        state jsonb,
        committed_at timestamptz,
        owner text,
        fence bigint NOT NULL DEFAULT 0,
        lease_expires_at timestamptz
      );
      CREATE TABLE oktail_nodes (
        node_id text PRIMARY KEY,
        started_at timestamptz NOT NULL DEFAULT now(),
        heartbeat_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      );`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * A constant key for pg_advisory_xact_lock: replicas starting together queue on it, so exactly one of
 * them applies each step and the others then find it done. The lock ends with the transaction.
 */
const MIGRATION_LOCK = 0x6f6b7461; // "okta"

/** Brings the schema to SCHEMA_VERSION; returns the steps applied (none when it was current). */
export async function migrate(client: pg.ClientBase): Promise<number[]> {
  const applied: number[] = [];
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS oktail_schema_version (version integer PRIMARY KEY, ' +
        'applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const { rows } = await client.query<{ v: number | null }>(
      'SELECT max(version) AS v FROM oktail_schema_version',
    );
    const current = rows[0]?.v ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new Error(
        `the state database has schema version ${current}, newer than this oktail knows (${SCHEMA_VERSION}); ` +
          'upgrade oktail on this replica',
      );
    }
    for (const step of MIGRATIONS) {
      if (step.version <= current) continue;
      await client.query(step.sql);
      await client.query('INSERT INTO oktail_schema_version (version) VALUES ($1)', [step.version]);
      applied.push(step.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
