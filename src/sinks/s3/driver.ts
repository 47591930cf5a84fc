import { PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { OktailError, errorMessage } from '../../core/errors.js';
import type { EventBatch } from '../../core/sink.js';
import type { SendOutcome, SinkDriver, SinkItems } from '../shared/network-sink.js';
import { objectKey } from './key.js';

const gzip = promisify(gzipCallback);

export interface S3DriverOptions {
  /** Sink name, for messages. */
  name: string;
  bucket: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  keyPrefix: string;
  compression: 'gzip' | 'none';
  /** zlib level, 1-9. */
  compressionLevel: number;
  /** Absent: the AWS SDK's default chain (environment, shared config, SSO, container or instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** S3 error codes retrying cannot fix: the bucket, the credentials or the policy must change. */
const PERMANENT_CODES = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'NoSuchBucket',
  'InvalidBucketName',
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'AccountProblem',
  'InvalidObjectState',
  'KMS.AccessDeniedException',
]);

/**
 * One object per request: the events as NDJSON, gzip by default. PutObject answers only once S3 stored
 * the object durably, and the key is derived from the first event (see `objectKey`), so a request sent
 * again overwrites the same object. Retries belong to the helper: the SDK's own are off.
 */
export class S3Driver implements SinkDriver {
  readonly #o: S3DriverOptions;
  readonly #client: S3Client;
  /**
   * Objects whose key and body the s3 sink made while their pages arrived (it compresses each page as it
   * comes, so it never holds the events uncompressed), by the batch it hands to the helper for them.
   */
  readonly prepared = new WeakMap<EventBatch, { key: string; body: Buffer }>();

  constructor(options: S3DriverOptions) {
    this.#o = options;
    const config: S3ClientConfig = {
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      maxAttempts: 1,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
    };
    this.#client = new S3Client(config);
  }

  /** The key of an object starting with `items`' first event. */
  keyFor(items: Pick<SinkItems, 'length' | 'uuid' | 'published' | 'source' | 'bytes'>): string {
    return objectKey(this.#o.keyPrefix, items, this.#o.compression === 'gzip');
  }

  async send(items: SinkItems, signal: AbortSignal): Promise<SendOutcome> {
    const compressed = this.#o.compression === 'gzip';
    const batch = items.batch?.(0);
    const prepared = batch ? this.prepared.get(batch) : undefined;
    if (prepared && items.length !== batch!.count) {
      // Its events are not at hand, only their compressed bytes: a part of it cannot be sent.
      return {
        kind: 'permanent',
        error: new OktailError('INTERNAL', `Sink ${this.#o.name}: a prepared object was cut into parts`),
      };
    }
    const key = prepared?.key ?? this.keyFor(items);
    const body =
      prepared?.body ??
      (compressed ? await gzip(items.ndjson(), { level: this.#o.compressionLevel }) : items.ndjson());
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#o.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/x-ndjson',
          ...(compressed ? { ContentEncoding: 'gzip' } : {}),
        }),
        { abortSignal: signal },
      );
      return { kind: 'ok' };
    } catch (err) {
      return this.#classify(err, key);
    }
  }

  #classify(err: unknown, key: string): SendOutcome {
    const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | null;
    const code = e?.Code ?? e?.name ?? 'Error';
    const status = e?.$metadata?.httpStatusCode;
    const where = `s3://${this.#o.bucket}/${key}${this.#o.endpoint ? ` at ${this.#o.endpoint}` : ''}`;
    const text = `${code}${status ? ` (HTTP ${status})` : ''}: ${errorMessage(err)}`;
    const permanent =
      PERMANENT_CODES.has(code) ||
      (status !== undefined &&
        status >= 400 &&
        status < 500 &&
        ![408, 429].includes(status) &&
        code !== 'RequestTimeout');
    if (permanent) {
      const fix =
        code === 'NoSuchBucket' || code === 'InvalidBucketName'
          ? 'create the bucket or fix bucket'
          : code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed'
            ? "set region to the bucket's region"
            : 'check auth (or the credentials the AWS default chain finds) and that their policy allows s3:PutObject on the bucket';
      return {
        kind: 'permanent',
        error: new OktailError(
          'SINK_WRITE_FAILED',
          `Sink ${this.#o.name}: S3 refused ${where} (${text}); ${fix}`,
          false,
          { cause: err },
        ),
      };
    }
    return {
      kind: 'retry',
      reason: status ? `http_${status}` : code,
      error: new OktailError(
        'SINK_WRITE_FAILED',
        `Sink ${this.#o.name}: writing ${where} failed (${text})`,
        true,
        {
          cause: err,
        },
      ),
    };
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }
}
