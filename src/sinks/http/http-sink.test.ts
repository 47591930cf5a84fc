import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchFromNdjson } from '../../core/event-batch.js';
import { createTestPki, type TestPki } from '../../emulator/pki.js';
import { silentLogger } from '../../telemetry/logger.js';
import { LogTelemetry } from '../../telemetry/telemetry.js';
import { HttpIngest } from '../../../test/support/http-ingest.js';
import { HttpSinkSchema } from './registration.js';
import { createHttpSink } from './http-sink.js';

let pki: TestPki;
let ingest: HttpIngest;

beforeAll(async () => {
  pki = await createTestPki();
  ingest = new HttpIngest(pki);
  await ingest.start();
});
afterAll(async () => {
  await ingest.stop();
});

function batch(from: number, n: number) {
  let text = '';
  for (let i = from; i < from + n; i++) text += `{"uuid":"u${i}","n":${i},"_okta_event_type":"systemLog"}\n`;
  return batchFromNdjson('okta', 'acme.okta.com', Buffer.from(text));
}

async function sink(extra: Record<string, unknown> = {}) {
  const ca = `${(await import('node:os')).tmpdir()}/oktail-http-ca-${process.pid}.pem`;
  await (await import('node:fs/promises')).writeFile(ca, pki.caCert);
  const config = HttpSinkSchema.parse({
    type: 'http',
    inputs: ['okta'],
    uri: ingest.url,
    tls: { ca_file: ca },
    batch: { timeout_secs: 0 },
    request: { retry_initial_backoff_secs: 0.01, retry_max_duration_secs: 1, timeout_secs: 2 },
    ...extra,
  });
  const log = silentLogger();
  return createHttpSink('siem', config, {
    log,
    telemetry: new LogTelemetry(log),
    dataDir: '/nonexistent',
    configDir: '/nonexistent',
  });
}

const live = () => new AbortController().signal;

function reset() {
  ingest.requests.length = 0;
  ingest.accepted.length = 0;
  ingest.mode = { kind: 'accept' };
  ingest.remaining = undefined;
  ingest.maxBodyBytes = Infinity;
  ingest.expectAuthorization = undefined;
}

describe('http sink', () => {
  it('POSTs ndjson with gzip and a bearer token, and json_array with basic auth', async () => {
    reset();
    ingest.expectAuthorization = 'Bearer t0ken-value';
    const s = await sink({
      compression: 'gzip',
      headers: { 'X-Source': 'oktail' },
      auth: { strategy: 'bearer', token: 't0ken-value' },
    });
    expect(await s.write(batch(0, 3), live())).toEqual({ kind: 'ok' });
    await s.close();
    expect(ingest.uuids()).toEqual(['u0', 'u1', 'u2']);
    expect(ingest.requests[0]?.headers['x-source']).toBe('oktail');
    expect(ingest.requests[0]?.headers['content-encoding']).toBe('gzip');

    reset();
    ingest.expectAuthorization = `Basic ${Buffer.from('u:p4ss').toString('base64')}`;
    const t = await sink({
      encoding: 'json_array',
      auth: { strategy: 'basic', user: 'u', password: 'p4ss' },
    });
    expect(await t.write(batch(5, 2), live())).toEqual({ kind: 'ok' });
    await t.close();
    expect(ingest.uuids()).toEqual(['u5', 'u6']);
    expect(ingest.requests[0]?.body.toString()).toBe(
      '[{"uuid":"u5","n":5,"_okta_event_type":"systemLog"},{"uuid":"u6","n":6,"_okta_event_type":"systemLog"}]',
    );
  });

  it('retries 429 (honouring Retry-After), 503 and 408 until accepted', async () => {
    for (const mode of [
      { kind: 'status', status: 429, retryAfter: '0' },
      { kind: 'status', status: 503 },
      { kind: 'status', status: 408 },
    ] as const) {
      reset();
      ingest.mode = mode;
      ingest.remaining = 2;
      const s = await sink();
      expect(await s.write(batch(0, 2), live())).toEqual({ kind: 'ok' });
      await s.close();
      expect(ingest.requests.map((r) => r.status)).toEqual([mode.status, mode.status, 200]);
      expect(ingest.uuids()).toEqual(['u0', 'u1']);
    }
  });

  it('splits a batch the destination answers 413 for', async () => {
    reset();
    ingest.maxBodyBytes = 120;
    const s = await sink();
    expect(await s.write(batch(0, 6), live())).toEqual({ kind: 'ok' });
    await s.close();
    expect(ingest.uuids()).toEqual(['u0', 'u1', 'u2', 'u3', 'u4', 'u5']);
    expect(ingest.requests.some((r) => r.status === 413)).toBe(true);
  });

  it('halts on 401 with the status and the response text, never the token', async () => {
    reset();
    ingest.expectAuthorization = 'Bearer right';
    const s = await sink({ auth: { strategy: 'bearer', token: 'wrong-secret-token' } });
    const result = await s.write(batch(0, 1), live());
    await s.close();
    expect(result.kind).toBe('fatal');
    const message = result.kind === 'fatal' ? result.error.message : '';
    expect(message).toContain('HTTP 401');
    expect(message).toContain('invalid credentials');
    expect(message).toContain('siem');
    expect(message).not.toContain('wrong-secret-token');
  });

  it('times out a destination that hangs and answers retry when shut down', async () => {
    reset();
    ingest.mode = { kind: 'hang' };
    const s = await sink({ request: { timeout_secs: 1, retry_initial_backoff_secs: 0.01 } });
    const shutdown = new AbortController();
    const pending = s.write(batch(0, 1), shutdown.signal);
    while (ingest.requests.length < 2) await new Promise((r) => setTimeout(r, 20));
    shutdown.abort(new Error('SIGTERM'));
    expect((await pending).kind).toBe('retry');
    await s.close();
    expect(ingest.accepted).toEqual([]);
  });
});
