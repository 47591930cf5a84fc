import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRandom } from '../src/emulator/random.js';
import { S3Driver, type S3DriverOptions } from '../src/sinks/s3/driver.js';
import { S3Server } from './support/s3.js';
import { collect, readState, runCli, spawnCli, startOrg, type TestOrg } from './support/harness.js';
import { generatedSinkItems, taggedBytes } from './support/sink-items.js';
import { waitUntil, writeConfigWithSink } from './support/sink-config.js';
import { itemsOf, type SendOutcome, type SinkItems } from '../src/sinks/shared/network-sink.js';
import { S3Sink } from '../src/sinks/s3/s3-sink.js';
import { batchFromNdjson } from '../src/core/event-batch.js';
import { silentLogger } from '../src/telemetry/logger.js';
import { LogTelemetry } from '../src/telemetry/telemetry.js';

const LF = Buffer.from('\n');

const HOUR = 3600_000;

const server = new S3Server(['security-logs']);
let client: S3Client;

beforeAll(async () => {
  await server.start();
  client = server.client();
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
    compressionLevel: 3,
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
    const items = generatedSinkItems(250, 1, 'gz');
    const d = driver({ keyPrefix: 'gz/%Y/%m/%d/' });
    expect(await d.send(itemsOf(items), signal())).toEqual({ kind: 'ok' });
    await d.close();
    const [key, ...rest] = await keys('gz/');
    expect(rest).toEqual([]);
    expect(key).toBe(`gz/2026/11/01/gz-20261101T000000.000Z-${items[0]!.uuid}.ndjson.gz`);
    const expected = Buffer.concat(items.flatMap((i) => [i.bytes, Buffer.from('\n')]));
    expect(gunzipSync(await body(key!)).equals(expected)).toBe(true);
  });

  it('compresses at the configured level', async () => {
    const items = generatedSinkItems(500, 3, 'lvl');
    const expected = Buffer.concat(items.flatMap((i) => [i.bytes, Buffer.from('\n')]));
    const sizes: number[] = [];
    for (const level of [1, 9]) {
      const d = driver({ keyPrefix: `lvl${level}/`, compressionLevel: level });
      expect(await d.send(itemsOf(items), signal())).toEqual({ kind: 'ok' });
      await d.close();
      const [key] = await keys(`lvl${level}/`);
      const stored = await body(key!);
      expect(gunzipSync(stored).equals(expected)).toBe(true);
      sizes.push(stored.length);
    }
    // zlib's fast strategy (levels 1-3) finds fewer repeats than its slow one: the same events come out larger.
    expect(sizes[0]!).toBeGreaterThan(sizes[1]! * 1.05);
  });

  it('overwrites the same object when a request is sent again, with more events or the same', async () => {
    const items = generatedSinkItems(300, 2, 'replay');
    const d = driver({ keyPrefix: 'replay/', compression: 'none' });
    expect(await d.send(itemsOf(items.slice(0, 120)), signal())).toEqual({ kind: 'ok' });
    expect(await d.send(itemsOf(items.slice(0, 120)), signal())).toEqual({ kind: 'ok' });
    // The page fetched again after a crash: same first event, more events since.
    expect(await d.send(itemsOf(items), signal())).toEqual({ kind: 'ok' });
    await d.close();
    const all = await keys('replay/');
    expect(all).toHaveLength(1);
    const lines = (await body(all[0]!)).toString('utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(300);
    expect(new Set(lines).size).toBe(300);
  });

  it('halts on a missing bucket and on wrong credentials, without showing the secret key', async () => {
    const missing = driver({ bucket: 'no-such-bucket' });
    const r1 = await missing.send(itemsOf(generatedSinkItems(1, 3)), signal());
    await missing.close();
    expect(r1.kind).toBe('permanent');
    expect(r1.kind === 'permanent' && r1.error.message).toMatch(/NoSuchBucket.*create the bucket/);

    const wrong = driver({
      credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'wrong-secret-key-value' },
    });
    const r2 = await wrong.send(itemsOf(generatedSinkItems(1, 3)), signal());
    await wrong.close();
    expect(r2.kind).toBe('permanent');
    expect(r2.kind === 'permanent' && r2.error.message).toMatch(/InvalidAccessKeyId|SignatureDoesNotMatch/);
    expect(r2.kind === 'permanent' && r2.error.message).not.toContain('wrong-secret-key-value');
  });

  it('sends a held gzip object again after a failed PUT, and builds the next object in the same buffer', async () => {
    /** Fails the first PUT it is given and records the key and body of every attempt. */
    class FlakyDriver extends S3Driver {
      failures = 1;
      readonly attempts: { key: string; body: Buffer }[] = [];
      override async send(items: SinkItems, s: AbortSignal): Promise<SendOutcome> {
        const prepared = this.prepared.get(items.batch!(0));
        this.attempts.push({ key: prepared!.key, body: Buffer.from(prepared!.body) });
        if (this.failures-- > 0) return { kind: 'retry', reason: 'http_503', error: new Error('busy') };
        return super.send(items, s);
      }
    }
    const prefix = `reuse-${Date.now()}/`;
    const d = new FlakyDriver({
      name: 'lake',
      bucket: 'security-logs',
      region: 'us-east-1',
      endpoint: server.endpoint,
      forcePathStyle: true,
      keyPrefix: prefix,
      compression: 'gzip',
      compressionLevel: 3,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    const sink = new S3Sink({
      name: 'lake',
      inputs: ['okta'],
      type: 's3',
      driver: d,
      compression: 'gzip',
      compressionLevel: 3,
      settings: {
        batch: { maxEvents: 100_000, maxBytes: 50_000_000, timeoutMs: 0 },
        request: { timeoutMs: 30_000, concurrency: 1 },
        retry: { initialBackoffMs: 1, maxBackoffMs: 5 },
      },
      holdMs: 600_000,
      telemetry: new LogTelemetry(silentLogger()),
      log: silentLogger(),
    });
    // Four pages of 300 events; the first object holds pages 1-2, the second pages 3-4.
    const events = generatedSinkItems(1200, 41);
    const page = (k: number) => {
      const part = events.slice(k * 300, (k + 1) * 300);
      return batchFromNdjson('okta', 'acme.okta.com', Buffer.concat(part.flatMap((e) => [e.bytes, LF])));
    };
    expect(await sink.write(page(0))).toEqual({ kind: 'held' });
    expect(await sink.write(page(1))).toEqual({ kind: 'held' });
    expect(await sink.holds.flush('okta', signal())).toEqual({ kind: 'ok' });
    // The retry sent the very bytes of the failed attempt.
    expect(d.attempts).toHaveLength(2);
    expect(d.attempts[1]!.key).toBe(d.attempts[0]!.key);
    expect(d.attempts[1]!.body.equals(d.attempts[0]!.body)).toBe(true);

    expect(await sink.write(page(2))).toEqual({ kind: 'held' });
    expect(await sink.write(page(3))).toEqual({ kind: 'held' });
    expect(await sink.holds.flush('okta', signal())).toEqual({ kind: 'ok' });
    await sink.close();

    const stored = await keys(prefix);
    expect(stored).toHaveLength(2);
    const uuids = (raw: Buffer) =>
      gunzipSync(raw)
        .toString('utf8')
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as { uuid: string }).uuid);
    const first = uuids(await body(stored.find((k) => k === d.attempts[0]!.key)!));
    const second = uuids(await body(stored.find((k) => k !== d.attempts[0]!.key)!));
    // The second object was built in the buffer the first was sent from: the first is still whole.
    expect(first).toEqual(events.slice(0, 600).map((e) => e.uuid));
    expect(second).toEqual(events.slice(600).map((e) => e.uuid));
  });

  it('asks for a retry while the store is unreachable', async () => {
    const d = driver({ endpoint: 'http://127.0.0.1:1' });
    const result = await d.send(itemsOf(generatedSinkItems(1, 4)), signal());
    await d.close();
    expect(result.kind).toBe('retry');
  });
});

describe('s3 sink in a running collector', () => {
  let org: TestOrg | undefined;
  afterEach(async () => {
    await org?.stop();
    org = undefined;
  });

  /** The config of an s3 sink named lake writing to this suite's s3rver under `prefix`. */
  function lakeLines(prefix: string, more: string[] = []): string[] {
    return server.sinkLines('lake', [`  key_prefix: "${prefix}"`, ...more]);
  }

  /** A config whose lake signs with the suite's keys, read from the environment it returns. */
  async function lakeConfig(of: TestOrg, prefix: string, more: string[]) {
    const { file, out } = await writeConfigWithSink(
      of,
      lakeLines(prefix, [
        ...more,
        '  auth: { access_key_id: "${S3_KEY_ID}", secret_access_key: "${S3_SECRET}" }',
      ]),
      { startFrom: new Date(Date.now() - 2 * HOUR).toISOString() },
    );
    const env = {
      OKTA_API_TOKEN: of.token,
      S3_KEY_ID: server.accessKeyId,
      S3_SECRET: server.secretAccessKey,
    };
    return { file, out, env };
  }

  /** Every line of every object under `prefix`, and how many objects there are. */
  async function objectLines(prefix: string): Promise<{ objects: number; largest: number; lines: string[] }> {
    const all = await keys(prefix);
    const lines: string[] = [];
    let largest = 0;
    for (const key of all) {
      const raw = await body(key);
      const text = (key.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
      expect(text.endsWith('\n')).toBe(true);
      const own = text.slice(0, -1).split('\n');
      largest = Math.max(largest, own.length);
      lines.push(...own);
    }
    return { objects: all.length, largest, lines };
  }

  it('without auth, signs with the credentials the AWS default chain finds in the environment', async () => {
    org = await startOrg();
    org.emulator.appendEvents(1500, { publishedStart: Date.now() - HOUR, seed: 43 });
    const { file } = await writeConfigWithSink(org, lakeLines('chain/'), {
      startFrom: new Date(Date.now() - 2 * HOUR).toISOString(),
    });
    const result = await runCli(['run', '--once', '-c', file], {
      env: {
        OKTA_API_TOKEN: org.token,
        AWS_ACCESS_KEY_ID: server.accessKeyId,
        AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
        // Only the environment: no shared files of whoever runs the suite, no instance metadata lookup.
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
        AWS_CONFIG_FILE: '/nonexistent/config',
        AWS_PROFILE: undefined,
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    });
    expect(result.code, result.stderr).toBe(0);
    const { lines } = await objectLines('chain/');
    expect(lines).toEqual(org.emulator.allEvents().map((e) => taggedBytes(e).toString('utf8')));
  });

  it('gathers consecutive pages into objects, uncompressed too: cut before a page that does not fit, and at the end of --once', async () => {
    org = await startOrg();
    org.emulator.appendEvents(4200, { publishedStart: Date.now() - HOUR, seed: 44 });
    const { file, env } = await lakeConfig(org, 'plain/', [
      '  compression: none',
      '  batch: { max_events: 2500 }',
    ]);
    const result = await runCli(['run', '--once', '-c', file], { env });
    expect(result.code, result.stderr).toBe(0);
    // Pages of 1000, 1000, 1000, 1000 and 200: a third page does not fit beside two in 2500 events, so the
    // first object holds two pages; the last three are written when the --once cycle ends.
    const all = await keys('plain/');
    expect(all.every((k) => k.endsWith('.ndjson'))).toBe(true);
    const { objects, largest, lines } = await objectLines('plain/');
    expect({ objects, largest }).toEqual({ objects: 2, largest: 2200 });
    expect(lines).toEqual(org.emulator.allEvents().map((e) => taggedBytes(e).toString('utf8')));
  });

  /**
   * SIGKILLs `run --once` again and again while it writes objects, then checks that the objects (and the
   * file sink on the same source) hold every served event exactly once.
   */
  async function crashLoop(
    prefix: string,
    batch: string,
    rounds: number,
    /** When to kill: once there are `objects` objects, or once the source's checkpoint moved; then `delayMs` later. */
    killAfter: (
      random: ReturnType<typeof createRandom>,
      before: number,
    ) => { objects: number; delayMs: number } | { commit: true; delayMs: number },
  ) {
    org = await startOrg({ latencyMs: 20 });
    org.emulator.appendEvents(9000, { publishedStart: Date.now() - HOUR, seed: 41, outOfOrder: 0.05 });
    org.emulator.randomFaults({ probability: 0.05, seed: 6, kinds: [{ kind: 'status', status: 503 }] });
    const { file, out, env } = await lakeConfig(org, `${prefix}%Y/%m/%d/`, [
      `  batch: ${batch}`,
      '  request: { timeout_secs: 20, retry_initial_backoff_secs: 0.05, retry_max_duration_secs: 1 }',
    ]);
    const random = createRandom(20261129);
    let kills = 0;
    for (let round = 0; round < rounds; round++) {
      // A short last page, then more events: the replay of that page holds more events than the original.
      if (round === 3)
        org.emulator.appendEvents(700, { publishedStart: Date.now() - HOUR / 2, outOfOrder: 0.3 });
      const before = (await keys(prefix)).length;
      const when = killAfter(random, before);
      // The source's committed state when the round starts (the first round commits its starting state).
      let baseline = await sourceState(org);
      const progressed = async (): Promise<boolean> => {
        if ('objects' in when) return (await keys(prefix)).length >= when.objects;
        const now = await sourceState(org!);
        if (baseline === null) baseline = now;
        return now !== baseline;
      };
      const started = performance.now();
      const child = spawnCli(['run', '--once', '-c', file], env);
      const done = collect(child, started, 120_000);
      await waitUntil(async () => child.exitCode !== null || (await progressed()), 60_000);
      if (when.delayMs > 0) await new Promise((r) => setTimeout(r, when.delayMs));
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        kills++;
      }
      const result = await done;
      if (result.signal !== 'SIGKILL') expect(result.code, result.stderr).toBe(0);
    }
    org.emulator.randomFaults(null);
    const final = await runCli(['run', '--once', '-c', file], { env });
    expect(final.code, final.stderr).toBe(0);

    const served = org.emulator.allEvents().map((e) => taggedBytes(e).toString('utf8'));
    const { objects, largest, lines } = await objectLines(prefix);
    const fileLines = (await readFile(out, 'utf8')).trimEnd().split('\n');
    for (const [where, held] of [
      ['objects', lines],
      ['file', fileLines],
    ] as const) {
      const counts = new Map<string, number>();
      for (const line of held) counts.set(line, (counts.get(line) ?? 0) + 1);
      const duplicated = [...counts.values()].filter((n) => n > 1).length;
      const missing = served.filter((m) => !counts.has(m)).length;
      expect({ where, duplicated, missing, lines: held.length }).toEqual({
        where,
        duplicated: 0,
        missing: 0,
        lines: served.length,
      });
    }
    return { kills, objects, largest, events: served.length };
  }

  /** The okta source's committed state as text, null before the first commit. */
  async function sourceState(of: TestOrg): Promise<string | null> {
    try {
      return JSON.stringify((await readState(of)).sources.okta?.state ?? null);
    } catch {
      return null;
    }
  }

  it('holds every served event exactly once across SIGKILLs: pages cut into objects are cut the same again', async () => {
    // Smaller than a page, so each page is cut into several objects and the cut points are tested too.
    const { kills, objects, events } = await crashLoop(
      'crash/',
      '{ max_events: 400 }',
      8,
      (random, before) => ({
        objects: before + 1 + random.int(6),
        delayMs: 0,
      }),
    );
    expect(kills).toBeGreaterThanOrEqual(4);
    console.log(
      `s3 crash loop (pages cut): ${kills} SIGKILLs, ${events} events in ${objects} objects, each once`,
    );
  }, 300_000);

  it('holds every served event exactly once across SIGKILLs: objects of several pages, cut by size and timeout', async () => {
    // Two 1000-event pages fill an object; the short timeout cuts others after one page, at moments that
    // differ from run to run, so a replay cuts its objects elsewhere than the run it replaces.
    const { kills, objects, largest, events } = await crashLoop(
      'units/',
      '{ max_events: 2000, timeout_secs: 0.15 }',
      10,
      // Each kill comes 0-40 ms after a commit, that is after an object was stored, while the next fills.
      (random) => ({ commit: true, delayMs: random.int(3) * 20 }),
    );
    expect(kills).toBeGreaterThanOrEqual(3);
    // Some object holds more than one 1000-event page.
    expect(largest).toBeGreaterThan(1000);
    console.log(
      `s3 crash loop (several pages per object): ${kills} SIGKILLs, ${events} events in ${objects} objects, each once`,
    );
  }, 300_000);
});
