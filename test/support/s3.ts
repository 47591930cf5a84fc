import { S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

// s3rver ships CommonJS without type declarations.
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;

/**
 * s3rver (a third-party S3 emulator from npm) on a free loopback port, storing objects in a temp dir.
 * Its fixed credentials are S3RVER/S3RVER; signatures are checked like AWS does.
 */
export class S3Server {
  readonly accessKeyId = 'S3RVER';
  readonly secretAccessKey = 'S3RVER';
  endpoint = '';
  dir = '';
  #server: S3rverInstance | null = null;

  constructor(readonly buckets: string[] = ['security-logs']) {}

  async start(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'oktail-s3-'));
    this.#server = new S3rver({
      address: '127.0.0.1',
      port: 0,
      silent: true,
      directory: this.dir,
      configureBuckets: this.buckets.map((name) => ({ name })),
    });
    const { port } = await this.#server.run();
    this.endpoint = `http://127.0.0.1:${port}`;
  }

  /** An AWS SDK client for this server, with its credentials; the caller destroys it. */
  client(): S3Client {
    return new S3Client({
      region: 'us-east-1',
      endpoint: this.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey },
    });
  }

  /**
   * The config lines of an s3 sink `name` (fed by source okta) writing to this server's first bucket,
   * then `more` (indented as the sink's keys), for a YAML `sinks:` map.
   */
  sinkLines(name: string, more: string[] = []): string[] {
    return [
      `${name}:`,
      '  type: s3',
      '  inputs: [okta]',
      `  bucket: ${this.buckets[0]}`,
      '  region: us-east-1',
      `  endpoint: ${this.endpoint}`,
      '  force_path_style: true',
      ...more,
    ];
  }

  /** Stops serving (connections are refused) and keeps the stored objects for `resume`. */
  async pause(): Promise<void> {
    await this.#server?.close();
    this.#server = null;
  }

  /** Serves again on the same port and directory. */
  async resume(): Promise<void> {
    if (this.#server) return;
    this.#server = new S3rver({
      address: '127.0.0.1',
      port: Number(new URL(this.endpoint).port),
      silent: true,
      directory: this.dir,
      configureBuckets: this.buckets.map((name) => ({ name })),
    });
    await this.#server.run();
  }

  async stop(): Promise<void> {
    await this.#server?.close();
    this.#server = null;
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = '';
  }
}
