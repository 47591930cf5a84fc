import { isUtf8 } from 'node:buffer';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { OktailError, errorMessage } from '../../core/errors.js';
import type { SendOutcome, SinkDriver, SinkItems } from '../shared/network-sink.js';

export interface PostgresDriverOptions {
  /** Sink name, for messages. */
  name: string;
  /** Connection URL; holds the password, so it never goes into a message (see `describeUrl`). */
  url: string;
  table: string;
  /** TLS options; undefined leaves TLS to the URL's sslmode. */
  tls?: ConnectionOptions;
  /** Connections in the pool: the helper's request concurrency. */
  connections: number;
}

/** The table's shape: name, type as information_schema spells it, nullable. */
const COLUMNS: readonly (readonly [string, string, boolean])[] = [
  ['uuid', 'text', false],
  ['published', 'timestamp with time zone', false],
  ['event_type', 'text', false],
  ['source', 'text', false],
  ['event', 'jsonb', false],
  ['received_at', 'timestamp with time zone', false],
];

/** A quoted identifier, possibly schema-qualified (`security.okta_events`). */
export function quoteTable(table: string): string {
  return table
    .split('.')
    .map((part) => `"${part.replaceAll('"', '""')}"`)
    .join('.');
}

export function createTableSql(table: string): string {
  return (
    `CREATE TABLE IF NOT EXISTS ${quoteTable(table)} (uuid text PRIMARY KEY, published timestamptz NOT NULL, ` +
    'event_type text NOT NULL, source text NOT NULL, event jsonb NOT NULL, ' +
    'received_at timestamptz NOT NULL DEFAULT now())'
  );
}

/**
 * One statement per batch. The short fields go as array literals sent as text (see `textArrayLiteral`);
 * the events go as one text parameter, their NDJSON lines joined by "\n" and split on the server: tagged
 * events never hold a raw line feed (JSON escapes it), and this spares the client escaping every event
 * into an array literal, which measured as the slowest part. A single statement is one transaction, and
 * the protocol's limit of 65,535 parameters never comes into play.
 */
export function insertSql(table: string): string {
  return (
    `INSERT INTO ${quoteTable(table)} (uuid, published, event_type, source, event) ` +
    'SELECT u, p, t, s, e::jsonb FROM unnest($1::text::text[], $2::text::timestamptz[], ' +
    '$3::text::text[], $4::text::text[], ' +
    "string_to_array($5::text, E'\\n')) AS rows(u, p, t, s, e) " +
    'ON CONFLICT (uuid) DO NOTHING'
  );
}

/** What `insertEvents` needs of a connection: node-postgres's `query` (a Client, PoolClient or Pool). */
export interface Queryable {
  query(sql: string, values: unknown[]): Promise<unknown>;
}

export interface EventRows {
  /** Indexes into the request's items of the events that can be inserted. */
  rows: number[];
  /** Events without a uuid, published or eventType: the table cannot hold them. */
  failed: { index: number; retryable: boolean; reason: string }[];
}

/** Which of a request's events make rows, and why the others cannot. */
export function eventRows(items: SinkItems): EventRows {
  const rows: number[] = [];
  const failed: EventRows['failed'] = [];
  for (let i = 0; i < items.length; i++) {
    const missing: string[] = [];
    if (items.uuid(i) === null) missing.push('uuid');
    if (items.published(i) === null) missing.push('published');
    if (items.eventType(i) === null) missing.push('eventType');
    if (missing.length > 0)
      failed.push({ index: i, retryable: false, reason: `the event has no ${missing.join(', ')}` });
    else rows.push(i);
  }
  return { rows, failed };
}

/**
 * Inserts the events of `items` at `rows` (see `eventRows`) into `table` with one statement and
 * `ON CONFLICT (uuid) DO NOTHING`. It opens no transaction of its own, so it can run inside a caller's
 * (events and a checkpoint committed together); alone, the statement is its own transaction. Errors are
 * node-postgres's, for `classifyPostgresError`.
 */
export async function insertEvents(
  client: Queryable,
  table: string,
  items: SinkItems,
  rows: readonly number[],
): Promise<void> {
  if (rows.length === 0) return;
  await client.query(insertSql(table), insertParams(items, rows));
}

/**
 * The parameters of `insertSql`. Made apart from the query so that the per-event strings are garbage
 * before the request goes out: kept in the awaiting function's frame, they would live as long as the
 * request is in flight, long enough to be promoted out of the young generation.
 */
function insertParams(items: SinkItems, rows: readonly number[]): unknown[] {
  const uuids: string[] = new Array<string>(rows.length);
  const published: string[] = new Array<string>(rows.length);
  const types: string[] = new Array<string>(rows.length);
  const sources: string[] = new Array<string>(rows.length);
  rows.forEach((i, r) => {
    uuids[r] = items.uuid(i) as string;
    published[r] = items.published(i) as string;
    types[r] = items.eventType(i) as string;
    sources[r] = items.source(i);
  });
  let events: Buffer;
  if (rows.length === items.length) {
    // Every event makes a row: the NDJSON (the page's own bytes when the request is one run of a page)
    // without its last line feed is the parameter, with no copy of our own.
    const ndjson = items.ndjson();
    events = ndjson.subarray(0, ndjson.length - 1);
  } else {
    events = Buffer.allocUnsafe(rows.reduce((n, i) => n + items.byteLength(i) + 1, -1));
    let at = 0;
    rows.forEach((i, r) => {
      if (r > 0) events[at++] = 0x0a;
      at += items.copyBytes(i, events, at);
    });
  }
  // node-postgres sends a Buffer as the parameter's binary form, which for text is its UTF-8 bytes: the
  // events go as they came, with no decoding into a string and encoding back (the costliest part of the
  // client's work). Bytes that are not UTF-8 (Okta sends none) go decoded, invalid sequences replaced,
  // as they always did, rather than be refused by the server.
  const text = isUtf8(events) ? events : events.toString('utf8');
  // Buffers, not strings: each literal is tens of KB that would otherwise sit in the JavaScript heap for
  // as long as the request is in flight; as bytes (text's binary form) they live outside it.
  return [
    Buffer.from(textArrayLiteral(uuids)),
    Buffer.from(textArrayLiteral(published)),
    Buffer.from(textArrayLiteral(types)),
    Buffer.from(textArrayLiteral(sources)),
    text,
  ];
}

/**
 * `values` as one PostgreSQL array literal (`{"a","b"}`), the text node-postgres would make of the array,
 * made with one join instead of a quoted and escaped string per element.
 */
export function textArrayLiteral(values: readonly string[]): string {
  let plain = true;
  for (const v of values) {
    if (v.includes('"') || v.includes('\\')) {
      plain = false;
      break;
    }
  }
  const quoted = plain ? values : values.map((v) => v.replace(/["\\]/g, '\\$&'));
  return quoted.length === 0 ? '{}' : `{"${quoted.join('","')}"}`;
}

/** The URL without its password or query, for messages. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return '(unparsable url)';
  }
}

/** SQLSTATE classes and codes that retrying cannot fix: the grant, the table or the data must change. */
function isPermanent(code: string): boolean {
  return (
    code.startsWith('28') || // invalid authorization (wrong password, no pg_hba entry)
    code === '3D000' || // database does not exist
    code === '3F000' || // schema does not exist
    code === '42501' || // insufficient privilege
    code.startsWith('42') || // syntax or access rule: wrong column names or types in an existing table
    code.startsWith('22') || // data exception: a value the column type rejects
    code.startsWith('23') // integrity constraint: e.g. an extra NOT NULL column without a default
  );
}

/**
 * Inserts each request with `ON CONFLICT (uuid) DO NOTHING` (see `insertEvents`), so a batch delivered
 * again after a crash adds nothing: exactly once. COMMIT returns after the server flushed the WAL
 * (with the default synchronous_commit), which is when the batch counts as durably accepted.
 */
export class PostgresDriver implements SinkDriver {
  readonly #o: PostgresDriverOptions;
  readonly #pool: pg.Pool;
  #ready: Promise<void> | null = null;

  constructor(options: PostgresDriverOptions) {
    this.#o = options;
    this.#pool = new pg.Pool({
      connectionString: options.tls ? withoutSslParams(options.url) : options.url,
      ...(options.tls ? { ssl: options.tls } : {}),
      max: options.connections,
      application_name: 'oktail',
      connectionTimeoutMillis: 30_000,
      // A broken idle connection surfaces as a pool error; the next request opens a new one.
      idleTimeoutMillis: 60_000,
    });
    this.#pool.on('error', () => {});
    // The events' jsonb is compressed when stored, and pglz, the default, costs the server more than the
    // rest of the insert; lz4 (PostgreSQL 14+, when built with it) takes a fraction of that. Only new
    // values are affected, both read back the same, and a server without lz4 refuses the setting and
    // keeps pglz. Queued on the connection, the SET runs before its first statement.
    this.#pool.on('connect', (client) => {
      client.query("SET default_toast_compression = 'lz4'").catch(() => undefined);
    });
  }

  get #where(): string {
    return describeUrl(this.#o.url);
  }

  async send(items: SinkItems, signal: AbortSignal): Promise<SendOutcome> {
    const { rows, failed } = eventRows(items);
    if (rows.length === 0) return failed.length > 0 ? { kind: 'partial', failed } : { kind: 'ok' };
    let client: pg.PoolClient | undefined;
    const abort = () => {
      // Ending the connection cancels the statement; its transaction rolls back on the server.
      client?.connection.stream.destroy();
    };
    signal.addEventListener('abort', abort, { once: true });
    try {
      if (signal.aborted) throw signal.reason;
      // Connecting is not cancellable in pg; stop waiting for it on abort (a blackholed server would
      // otherwise hold a shutdown for connectionTimeoutMillis).
      await untilAborted(this.#ensureTable(), signal);
      client = await untilAborted(this.#checkout(), signal, (late) => this.#release(late));
      // One statement: the request is one transaction, as the sink promises.
      await insertEvents(client, this.#o.table, items, rows);
      this.#release(client);
      client = undefined;
      return failed.length > 0 ? { kind: 'partial', failed } : { kind: 'ok' };
    } catch (err) {
      // A connection that saw an error is not reused: it may be half-way through a broken protocol state.
      if (client) this.#release(client, err instanceof Error ? err : true);
      return this.#classify(err);
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }

  /** Creates the table when absent and checks that an existing one has the columns oktail writes. */
  #ensureTable(): Promise<void> {
    this.#ready ??= this.#checkTable().catch((err: unknown) => {
      this.#ready = null;
      throw err;
    });
    return this.#ready;
  }

  async #checkTable(): Promise<void> {
    const client = await this.#checkout();
    try {
      // Only when absent: CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when the table exists,
      // and a role a DBA gave INSERT on a prepared table has no such right.
      const { rows: exists } = await client.query<{ found: string | null }>(
        'SELECT to_regclass($1) AS found',
        [quoteTable(this.#o.table)],
      );
      if (exists[0]?.found === null) await client.query(createTableSql(this.#o.table));
      // pg_catalog, not information_schema: the latter hides columns of tables the role has no rights on,
      // which would report a table made by a DBA as having no columns at all.
      const { rows } = await client.query<{ column_name: string; data_type: string }>(
        'SELECT attname AS column_name, format_type(atttypid, atttypmod) AS data_type FROM pg_attribute ' +
          'WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped',
        [quoteTable(this.#o.table)],
      );
      const problems: string[] = [];
      for (const [column, type] of COLUMNS) {
        const found = rows.find((r) => r.column_name === column);
        if (!found) problems.push(`no column ${column}`);
        else if (found.data_type !== type) problems.push(`${column} is ${found.data_type}, not ${type}`);
      }
      const { rows: keys } = await client.query<{ columns: string }>(
        "SELECT string_agg(a.attname, ',' ORDER BY a.attnum) AS columns FROM pg_index i " +
          'JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) ' +
          'WHERE i.indrelid = $1::regclass AND (i.indisprimary OR i.indisunique) GROUP BY i.indexrelid',
        [quoteTable(this.#o.table)],
      );
      if (!keys.some((k) => k.columns === 'uuid'))
        problems.push('no primary key or unique index on uuid alone');
      if (problems.length > 0) {
        throw new ShapeError(
          `Sink ${this.#o.name}: table ${this.#o.table} at ${this.#where} has an incompatible shape ` +
            `(${problems.join('; ')}); drop or rename it so oktail creates it, or set table to another name`,
        );
      }
      this.#release(client);
    } catch (err) {
      this.#release(client, true);
      throw err;
    }
  }

  /**
   * A pooled connection with an error listener for as long as it is checked out: pg emits a dropped
   * connection's error on the client synchronously, before the query's rejection reaches us, and an
   * 'error' event without a listener would end the process.
   */
  async #checkout(): Promise<pg.PoolClient> {
    const client = await this.#pool.connect();
    client.on('error', ignore);
    return client;
  }

  #release(client: pg.PoolClient, err?: Error | boolean): void {
    client.off('error', ignore);
    client.release(err);
  }

  #classify(err: unknown): SendOutcome {
    if (err instanceof ShapeError) {
      return {
        kind: 'permanent',
        error: new OktailError('SINK_WRITE_FAILED', err.message, false, { cause: err }),
      };
    }
    const code = (err as { code?: unknown } | null)?.code;
    const text = errorMessage(err);
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
      if (code === '42P01') {
        // The table vanished while running (dropped by someone): create it again on the next attempt.
        this.#ready = null;
      } else if (isPermanent(code)) {
        const fix =
          code === '42501'
            ? `grant the role INSERT and SELECT on ${this.#o.table} (SELECT for ON CONFLICT (uuid); and CREATE on its schema if oktail is to create it)`
            : code.startsWith('28')
              ? 'check the user and password in url, and the server’s pg_hba.conf'
              : code === '3D000'
                ? 'create the database or fix its name in url'
                : `check that table ${this.#o.table} has the columns oktail writes (docs/sinks.md, postgres)`;
        return {
          kind: 'permanent',
          error: new OktailError(
            'SINK_WRITE_FAILED',
            `Sink ${this.#o.name}: PostgreSQL at ${this.#where} refused the batch (${code}: ${text}); ${fix}`,
            false,
            { cause: err },
          ),
        };
      }
    }
    const sslProblem = typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code);
    if (sslProblem || /does not support SSL/.test(text)) {
      return {
        kind: 'permanent',
        error: new OktailError(
          'SINK_WRITE_FAILED',
          `Sink ${this.#o.name}: TLS to PostgreSQL at ${this.#where} failed (${text}); ` +
            'check tls.ca_file and the server certificate, or the server’s ssl setting',
          false,
          { cause: err },
        ),
      };
    }
    return {
      kind: 'retry',
      reason: typeof code === 'string' ? code : 'connection',
      error: new OktailError(
        'SINK_WRITE_FAILED',
        `Sink ${this.#o.name}: writing to PostgreSQL at ${this.#where} failed (${text})`,
        true,
        { cause: err },
      ),
    };
  }

  /** Creates and checks the table now (before `insertEvents` writes to it through another connection). */
  async prepare(): Promise<void> {
    await this.#ensureTable();
  }

  async close(): Promise<void> {
    if (!this.#pool.ended) await this.#pool.end();
  }
}

class ShapeError extends Error {}

function ignore(): void {}

/** `pending`, or a rejection as soon as `signal` aborts; what `pending` yields after that goes to `late`. */
function untilAborted<T>(pending: Promise<T>, signal: AbortSignal, late?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (aborted) late?.(value);
        else resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (!aborted) reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * The URL without its ssl* query parameters: the pg driver lets the URL's override the `ssl` option, and
 * when `tls` is configured it must be what applies.
 */
export function withoutSslParams(url: string): string {
  try {
    const u = new URL(url);
    for (const key of [...u.searchParams.keys()]) if (key.startsWith('ssl')) u.searchParams.delete(key);
    return u.toString();
  } catch {
    return url;
  }
}
