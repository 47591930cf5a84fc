import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki } from '../../emulator/pki.js';
import { OktaHttpClient } from './client.js';

/** Bodies the server sends, by path; `chunked` ones go without a content-length, in small writes. */
const bodies = new Map<string, { bytes: Buffer; chunked: boolean }>();
let server: Server;
let client: OktaHttpClient;

beforeAll(async () => {
  const pki = await createTestPki();
  server = createServer({ ...pki.server }, (req, res) => {
    const body = bodies.get(req.url ?? '');
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    if (!body.chunked) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.bytes.length });
      res.end(body.bytes);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    for (let at = 0; at < body.bytes.length; at += 7000) res.write(body.bytes.subarray(at, at + 7000));
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  client = new OktaHttpClient({
    domain: `localhost:${port}`,
    auth: { header: 'authorization', prefix: 'SSWS ', token: 'unit-test-token' },
    tls: { ca: pki.caCert, verifyCertificate: true, verifyHostname: true },
    requestTimeoutMs: 10_000,
    userAgent: 'oktail-test',
  });
});

afterAll(async () => {
  await client.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function serve(path: string, size: number, chunked: boolean): Buffer {
  const bytes = randomBytes(size);
  bodies.set(path, { bytes, chunked });
  return bytes;
}

const fetch = (path: string) => client.fetch(client.resolve(path), AbortSignal.timeout(10_000));

describe('OktaHttpClient page bodies', () => {
  it('reads every body exactly, growing, shrinking, with and without a content-length', async () => {
    const plan: [number, boolean][] = [
      [1000, false],
      [300_000, true],
      [50, true],
      [900_000, false],
      [1_400_000, true],
      [20_000, false],
      [0, false],
    ];
    let shared: ArrayBufferLike | null = null;
    for (const [i, [size, chunked]] of plan.entries()) {
      const sent = serve(`/p${i}`, size, chunked);
      const page = await fetch(`/p${i}`);
      expect(page.status).toBe(200);
      expect(page.body.equals(sent)).toBe(true);
      // Past the largest page, bodies are read into the same buffer again.
      if (i === plan.length - 2) shared = page.body.buffer;
      if (i === plan.length - 1) expect(page.body.buffer).toBe(shared);
    }
  });

  it("reads bodies into shared memory, which a script's thread reads in place", async () => {
    const sent = serve('/shared', 100_000, false);
    const page = await fetch('/shared');
    expect(page.body.buffer).toBeInstanceOf(SharedArrayBuffer);
    const { port1, port2 } = new MessageChannel();
    const seen = new Promise<Uint8Array>((resolve) => port2.once('message', resolve));
    port1.postMessage(page.body);
    const there = await seen;
    port1.close();
    // The same memory on the other side: no copy was made, nothing was detached here.
    there[0] = (sent[0]! + 1) & 0xff;
    expect(page.body[0]).toBe((sent[0]! + 1) & 0xff);
    expect(page.body.length).toBe(sent.length);
  });
});
