import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Driver, type S3DriverOptions } from '../src/sinks/s3/driver.js';
import { S3Server } from './support/s3.js';
import { sinkItems } from './support/sink-items.js';

const server = new S3Server(['security-logs']);
let client: S3Client;

beforeAll(async () => {
  await server.start();
  client = new S3Client({
    region: 'us-east-1',
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
});
afterAll(async () => {
  client.destroy();
  await server.stop();
});

const signal = () => new AbortController().signal;

function driver(over: Partial<S3DriverOptions> = {}): S3Driver {
  return new S3Driver({
    name: 'lake',
    bucket: 'security-logs',
    region: 'us-east-1',
    endpoint: server.endpoint,
    forcePathStyle: true,
    keyPrefix: 'okta/%Y/%m/%d/',
    compression: 'gzip',
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    ...over,
  });
}

async function keys(prefix: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: 'security-logs', Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

async function body(key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: 'security-logs', Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

describe('s3 sink driver against s3rver with the AWS SDK', () => {
  it('writes one gzip NDJSON object per request, byte for byte the tagged events', async () => {
    const items = sinkItems(250, 1, 'gz');
    const d = driver({ keyPrefix: 'gz/%Y/%m/%d/' });
    expect(await d.send(items, signal())).toEqual({ kind: 'ok' });
    await d.close();
    const [key, ...rest] = await keys('gz/');
    expect(rest).toEqual([]);
    expect(key).toBe(`gz/2026/11/01/gz-20261101T000000.000Z-${items[0]!.uuid}.ndjson.gz`);
    const expected = Buffer.concat(items.flatMap((i) => [i.bytes, Buffer.from('\n')]));
    expect(gunzipSync(await body(key!)).equals(expected)).toBe(true);
  });

  it('overwrites the same object when a request is sent again, with more events or the same', async () => {
    const items = sinkItems(300, 2, 'replay');
    const d = driver({ keyPrefix: 'replay/', compression: 'none' });
    expect(await d.send(items.slice(0, 120), signal())).toEqual({ kind: 'ok' });
    expect(await d.send(items.slice(0, 120), signal())).toEqual({ kind: 'ok' });
    // The page fetched again after a crash: same first event, more events since.
    expect(await d.send(items, signal())).toEqual({ kind: 'ok' });
    await d.close();
    const all = await keys('replay/');
    expect(all).toHaveLength(1);
    const lines = (await body(all[0]!)).toString('utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(300);
    expect(new Set(lines).size).toBe(300);
  });

  it('halts on a missing bucket and on wrong credentials, without showing the secret key', async () => {
    const missing = driver({ bucket: 'no-such-bucket' });
    const r1 = await missing.send(sinkItems(1, 3), signal());
    await missing.close();
    expect(r1.kind).toBe('permanent');
    expect(r1.kind === 'permanent' && r1.error.message).toMatch(/NoSuchBucket.*create the bucket/);

    const wrong = driver({
      credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'wrong-secret-key-value' },
    });
    const r2 = await wrong.send(sinkItems(1, 3), signal());
    await wrong.close();
    expect(r2.kind).toBe('permanent');
    expect(r2.kind === 'permanent' && r2.error.message).toMatch(/InvalidAccessKeyId|SignatureDoesNotMatch/);
    expect(r2.kind === 'permanent' && r2.error.message).not.toContain('wrong-secret-key-value');
  });

  it('asks for a retry while the store is unreachable', async () => {
    const d = driver({ endpoint: 'http://127.0.0.1:1' });
    const result = await d.send(sinkItems(1, 4), signal());
    await d.close();
    expect(result.kind).toBe('retry');
  });
});
