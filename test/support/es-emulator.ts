import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRandom, type Random } from '../../src/emulator/random.js';
import { LoopbackHttpsServer } from './loopback-https.js';

/*
 * An emulator of the part of Elasticsearch (and OpenSearch) a log shipper uses: `GET /` and `POST /_bulk`,
 * written from Elastic's REST reference. Bulk items answer as Elasticsearch does: `create` of an `_id`
 * that exists is a per-item 409 `version_conflict_engine_exception`, overload is a per-item 429
 * `es_rejected_execution_exception`, a document the mapping cannot take is a per-item 400
 * `mapper_parsing_exception`; whole requests can get 429 or 503. Every response carries
 * `X-Elastic-Product: Elasticsearch` (the official 8.x client refuses a server without it) unless the
 * emulator plays OpenSearch. It is an emulator, not Elasticsearch: documents are kept as the exact bytes
 * received, with no mapping, search or replication.
 */

export interface EsEmulatorOptions {
  tls: { cert: string; key: string };
  flavor?: 'elasticsearch' | 'opensearch';
  /** Basic-auth users. */
  users?: { user: string; password: string }[];
  /** API keys as clients send them (`Authorization: ApiKey <encoded>`). */
  apiKeys?: string[];
}

export type EsFault =
  /** The whole bulk request gets 429 es_rejected_execution_exception. */
  | 'request-429'
  /** The whole bulk request gets 503 (cluster state not recovered). */
  | 'request-503'
  /** The connection is destroyed before any response, after the request was (maybe) applied. */
  | 'reset-after-apply'
  /** One item (chosen by the seeded generator) gets a 429; the rest of the request is applied. */
  | 'item-429';

export interface EsDocument {
  index: string;
  id: string;
  /** The exact bytes of the source line. */
  source: string;
}

export interface EsStats {
  requests: number;
  bulkRequests: number;
  /** Bulk items processed (including conflicts and rejections), for progress-driven tests. */
  itemsReceived: number;
  created: number;
  conflicts: number;
  rejected429: number;
  rejected400: number;
  requestFaults: number;
}

class EsReply extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`status ${status}`);
  }
}

function errorBody(status: number, type: string, reason: string | null, extra: Record<string, unknown> = {}) {
  const cause = { type, reason, ...extra };
  return { error: { root_cause: [cause], ...cause }, status };
}

const INVALID_INDEX_CHARS = /[\\/*?"<>| ,#:A-Z]/;

export class EsEmulator extends LoopbackHttpsServer {
  readonly #options: EsEmulatorOptions;
  readonly #indices = new Map<string, Map<string, string>>();
  readonly #documents: EsDocument[] = [];
  #queued: EsFault[] = [];
  #random: { probability: number; kinds: EsFault[]; random: Random } | null = null;
  #itemRandom: Random = createRandom(1);
  #rejectDocument: ((doc: EsDocument) => string | null) | null = null;
  /** While true every bulk request gets 503, as a cluster that lost its master answers. */
  unavailable = false;
  readonly stats: EsStats = {
    requests: 0,
    bulkRequests: 0,
    itemsReceived: 0,
    created: 0,
    conflicts: 0,
    rejected429: 0,
    rejected400: 0,
    requestFaults: 0,
  };

  constructor(options: EsEmulatorOptions) {
    super(options.tls, 'Elasticsearch emulator');
    this.#options = options;
  }

  /** Every stored document, in the order it was created. */
  documents(): readonly EsDocument[] {
    return this.#documents;
  }

  queueFaults(...faults: EsFault[]): void {
    this.#queued.push(...faults);
  }

  randomFaults(options: { probability: number; kinds: EsFault[]; seed: number } | null): void {
    this.#random =
      options === null
        ? null
        : { probability: options.probability, kinds: options.kinds, random: createRandom(options.seed) };
    if (options) this.#itemRandom = createRandom(options.seed + 1);
  }

  /** Documents for which `reject` returns a reason get a per-item 400 mapper_parsing_exception. */
  rejectDocuments(reject: ((doc: EsDocument) => string | null) | null): void {
    this.#rejectDocument = reject;
  }

  // ------------------------------------------------------------------------------------------------

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'https://es.invalid');
    try {
      this.#authenticate(req, url.pathname);
      if (url.pathname === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
        return this.#reply(res, 200, this.#info());
      }
      const bulk = /^\/(?:([^/_][^/]*)\/)?_bulk$/.exec(url.pathname);
      if (bulk === null) {
        throw new EsReply(
          400,
          errorBody(
            400,
            'illegal_argument_exception',
            `request [${url.pathname}] contains unrecognized parameter or path`,
          ),
        );
      }
      if (req.method !== 'POST' && req.method !== 'PUT') {
        throw new EsReply(
          405,
          {
            error: `Incorrect HTTP method for uri [${url.pathname}] and method [${req.method}], allowed: [POST, PUT]`,
            status: 405,
          },
          { Allow: 'POST,PUT' },
        );
      }
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (
        !['application/json', 'application/x-ndjson', 'application/vnd.elasticsearch+x-ndjson'].includes(type)
      ) {
        throw new EsReply(406, {
          error: `Content-Type header [${req.headers['content-type'] ?? ''}] is not supported`,
          status: 406,
        });
      }
      this.stats.bulkRequests++;
      const fault = this.unavailable ? 'request-503' : this.#fault();
      if (fault === 'request-429') {
        this.stats.requestFaults++;
        throw new EsReply(
          429,
          errorBody(
            429,
            'es_rejected_execution_exception',
            'rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1048576, max_coordinating_and_primary_bytes=1024]',
          ),
        );
      }
      if (fault === 'request-503') {
        this.stats.requestFaults++;
        throw new EsReply(
          503,
          errorBody(
            503,
            'cluster_block_exception',
            'blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];',
          ),
        );
      }
      const answer = this.#bulk(body, bulk[1] ?? null, fault === 'item-429');
      if (fault === 'reset-after-apply') {
        this.stats.requestFaults++;
        res.destroy();
        return;
      }
      this.#reply(res, 200, answer);
    } catch (err) {
      if (!(err instanceof EsReply)) throw err;
      this.#reply(res, err.status, err.body, err.headers);
    }
  }

  #authenticate(req: IncomingMessage, path: string): void {
    const users = this.#options.users ?? [];
    const keys = this.#options.apiKeys ?? [];
    if (users.length === 0 && keys.length === 0) return;
    const auth = req.headers.authorization ?? '';
    const basic = /^Basic\s+(\S+)$/i.exec(auth);
    if (basic) {
      const [user, ...rest] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      const password = rest.join(':');
      if (users.some((u) => u.user === user && u.password === password)) return;
      throw unauthorized(`unable to authenticate user [${user}] for REST request [${path}]`);
    }
    const apiKey = /^ApiKey\s+(\S+)$/i.exec(auth);
    if (apiKey) {
      if (keys.includes(apiKey[1]!)) return;
      throw unauthorized(
        `unable to authenticate with provided credentials and anonymous access is not allowed for this request`,
      );
    }
    throw unauthorized(`missing authentication credentials for REST request [${path}]`);
  }

  #bulk(body: string, defaultIndex: string | null, item429: boolean): unknown {
    const started = Date.now();
    if (body.length > 0 && !body.endsWith('\n')) {
      throw new EsReply(
        400,
        errorBody(
          400,
          'illegal_argument_exception',
          'The bulk request must be terminated by a newline [\\n]',
        ),
      );
    }
    const lines = body.split('\n').slice(0, -1);
    const items: unknown[] = [];
    let errors = false;
    const victim = item429 ? this.#itemRandom.int(Math.max(1, lines.length / 2)) : -1;
    for (let i = 0; i < lines.length; i += 2) {
      const actionLine = lines[i]!;
      let action: string;
      let meta: Record<string, unknown>;
      try {
        const parsed = JSON.parse(actionLine) as Record<string, Record<string, unknown>>;
        const keys = Object.keys(parsed);
        if (keys.length !== 1) throw new Error('one action');
        action = keys[0]!;
        meta = parsed[action]!;
      } catch {
        throw new EsReply(
          400,
          errorBody(
            400,
            'illegal_argument_exception',
            `Malformed action/metadata line [${i + 1}], expected START_OBJECT but found [VALUE_STRING]`,
          ),
        );
      }
      if (action !== 'create' && action !== 'index') {
        throw new EsReply(
          400,
          errorBody(
            400,
            'illegal_argument_exception',
            `Malformed action/metadata line [${i + 1}], expected field [create], [delete], [index] or [update] but found [${action}]`,
          ),
        );
      }
      const source = lines[i + 1];
      if (source === undefined) {
        throw new EsReply(
          400,
          errorBody(400, 'action_request_validation_exception', 'Validation Failed: 1: no requests added;'),
        );
      }
      this.stats.itemsReceived++;
      const index = typeof meta._index === 'string' ? meta._index : defaultIndex;
      const id = typeof meta._id === 'string' ? meta._id : `auto${this.#documents.length}`;
      const item = (status: number, extra: Record<string, unknown>) => {
        items.push({ [action]: { _index: index, _id: id, status, ...extra } });
        if (status >= 300) errors = true;
      };
      if (index === null) {
        item(400, {
          error: {
            type: 'action_request_validation_exception',
            reason: 'Validation Failed: 1: index is missing;',
          },
        });
        this.stats.rejected400++;
        continue;
      }
      if (INVALID_INDEX_CHARS.test(index) || /^[-_+]/.test(index) || index === '.' || index === '..') {
        item(400, {
          error: {
            type: 'invalid_index_name_exception',
            reason: `Invalid index name [${index}], must be lowercase`,
            index,
          },
        });
        this.stats.rejected400++;
        continue;
      }
      if (i / 2 === victim) {
        item(429, {
          error: {
            type: 'es_rejected_execution_exception',
            reason: `rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, primary_operation_bytes=${source.length}, max_coordinating_and_primary_bytes=1024]`,
          },
        });
        this.stats.rejected429++;
        continue;
      }
      const invalid = sourceProblem(source);
      const doc = { index, id, source };
      const rejection = invalid ?? this.#rejectDocument?.(doc) ?? null;
      if (rejection !== null) {
        item(400, {
          error: {
            type: 'mapper_parsing_exception',
            reason: rejection,
          },
        });
        this.stats.rejected400++;
        continue;
      }
      let docs = this.#indices.get(index);
      if (!docs) {
        docs = new Map();
        this.#indices.set(index, docs);
      }
      if (action === 'create' && docs.has(id)) {
        item(409, {
          error: {
            type: 'version_conflict_engine_exception',
            reason: `[${id}]: version conflict, document already exists (current version [1])`,
            index_uuid: 'aAsFqTI0Tc2W0LCWgPNrOA',
            shard: '0',
            index,
          },
        });
        this.stats.conflicts++;
        continue;
      }
      const replaced = docs.has(id);
      docs.set(id, source);
      if (replaced) {
        const at = this.#documents.findIndex((d) => d.index === index && d.id === id);
        this.#documents[at] = doc;
      } else {
        this.#documents.push(doc);
      }
      this.stats.created++;
      item(replaced ? 200 : 201, {
        _version: 1,
        result: replaced ? 'updated' : 'created',
        _shards: { total: 2, successful: 1, failed: 0 },
        _seq_no: docs.size - 1,
        _primary_term: 1,
      });
    }
    return { errors, took: Date.now() - started, items };
  }

  #info(): unknown {
    if (this.#options.flavor === 'opensearch') {
      return {
        name: 'emulator-node',
        cluster_name: 'emulator',
        cluster_uuid: 'Fh5TkdRzQ0u1BpUKpmQBDg',
        version: {
          distribution: 'opensearch',
          number: '2.19.0',
          build_type: 'tar',
          minimum_wire_compatibility_version: '7.10.0',
          minimum_index_compatibility_version: '7.0.0',
        },
        tagline: 'The OpenSearch Project: https://opensearch.org/',
      };
    }
    return {
      name: 'emulator-node',
      cluster_name: 'emulator',
      cluster_uuid: 'Fh5TkdRzQ0u1BpUKpmQBDg',
      version: {
        number: '8.19.0',
        build_flavor: 'default',
        build_type: 'tar',
        build_snapshot: false,
        lucene_version: '9.12.1',
        minimum_wire_compatibility_version: '7.17.0',
        minimum_index_compatibility_version: '7.0.0',
      },
      tagline: 'You Know, for Search',
    };
  }

  #fault(): EsFault | null {
    const queued = this.#queued.shift();
    if (queued !== undefined) return queued;
    const random = this.#random;
    if (random && random.random.next() < random.probability) return random.random.pick(random.kinds);
    return null;
  }

  #reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
      ...(this.#options.flavor === 'opensearch' ? {} : { 'X-Elastic-Product': 'Elasticsearch' }),
      ...headers,
    });
    res.end(text);
  }
}

function unauthorized(reason: string): EsReply {
  const header = { 'WWW-Authenticate': ['Basic realm="security" charset="UTF-8"', 'ApiKey'] };
  return new EsReply(401, errorBody(401, 'security_exception', reason, { header }), {
    'WWW-Authenticate': 'Basic realm="security" charset="UTF-8"',
  });
}

/** Why a source line is not one JSON object, or null. */
function sourceProblem(source: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(source);
  } catch (err) {
    return `failed to parse: ${(err as Error).message}`;
  }
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
    ? null
    : 'failed to parse: the source is not a JSON object';
}
