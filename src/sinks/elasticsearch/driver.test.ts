import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateEvents } from '../../emulator/events.js';
import { createTestPki, type TestPki } from '../../emulator/pki.js';
import { EsEmulator, type EsEmulatorOptions } from '../../../test/support/es-emulator.js';
import { sinkItems, taggedBytes } from '../../../test/support/sink-items.js';
import { ElasticsearchDriver, type ElasticsearchDriverOptions } from './driver.js';
import { compileIndexTemplate } from './framing.js';
import { itemsOf } from '../shared/network-sink.js';

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});

let es: EsEmulator | undefined;
let driver: ElasticsearchDriver | undefined;
afterEach(async () => {
  await driver?.close();
  await es?.stop();
  driver = es = undefined;
});

const PASSWORD = 'es-secret-pass-9f2';
const basic = `Basic ${Buffer.from(`elastic:${PASSWORD}`).toString('base64')}`;

async function setup(
  options: Partial<ElasticsearchDriverOptions> = {},
  emulator: Partial<EsEmulatorOptions> = {},
) {
  es = new EsEmulator({ tls: pki.server, users: [{ user: 'elastic', password: PASSWORD }], ...emulator });
  const origin = await es.start();
  driver = new ElasticsearchDriver({
    endpoints: [new URL(origin)],
    apiVersion: 'elasticsearch',
    index: compileIndexTemplate('okta-logs-%Y.%m.%d'),
    authorization: basic,
    connect: { ca: pki.caCert },
    userAgent: 'oktail/test',
    ...options,
  });
  return { es, driver };
}

const signal = () => AbortSignal.timeout(20_000);
const DAY = 86_400_000;

describe('Elasticsearch driver', () => {
  it('creates one document per event, keyed by uuid, in the index of its published day, bytes intact', async () => {
    const { es, driver } = await setup();
    const records = generateEvents(40, {
      seed: 1,
      publishedStart: Date.UTC(2026, 10, 27, 23, 59, 59, 990),
      stepMs: 1,
    });
    expect(await driver.send(itemsOf(sinkItems(records)), signal())).toEqual({ kind: 'ok' });
    const docs = es.documents();
    expect(docs.map((d) => d.id)).toEqual(records.map((r) => r.uuid));
    expect(docs.map((d) => d.source)).toEqual(records.map((r) => taggedBytes(r).toString('utf8')));
    expect(new Set(docs.map((d) => d.index))).toEqual(
      new Set(['okta-logs-2026.11.27', 'okta-logs-2026.11.28']),
    );
  });

  it('sends a batch twice without a duplicate: the 409 conflicts count as delivered', async () => {
    const { es, driver } = await setup();
    const items = sinkItems(generateEvents(20, { seed: 2, publishedStart: Date.now() - DAY }));
    expect(await driver.send(itemsOf(items.slice(0, 12)), signal())).toEqual({ kind: 'ok' });
    expect(await driver.send(itemsOf(items), signal())).toEqual({ kind: 'ok' });
    expect(es.documents()).toHaveLength(20);
    expect(es.stats.conflicts).toBe(12);
  });

  it('reports a 429 item as retryable and a mapping error as permanent, naming the uuid', async () => {
    const { es, driver } = await setup();
    const items = sinkItems(generateEvents(10, { seed: 3 }));
    const rejected = items[7]!.uuid!;
    es.rejectDocuments((doc) =>
      doc.id === rejected ? "failed to parse field [actor.id] of type [long] in document with id 'x'" : null,
    );
    es.queueFaults('item-429');
    const outcome = await driver.send(itemsOf(items), signal());
    expect(outcome.kind).toBe('partial');
    const failed = (outcome as { failed: { index: number; retryable: boolean; reason: string }[] }).failed;
    expect(failed.filter((f) => f.retryable)).toHaveLength(1);
    const permanent = failed.filter((f) => !f.retryable);
    expect(permanent).toHaveLength(1);
    expect(permanent[0]!.index).toBe(7);
    expect(permanent[0]!.reason).toContain(`event ${rejected}`);
    expect(permanent[0]!.reason).toContain('mapper_parsing_exception');
    expect(es.documents()).toHaveLength(8);
  });

  it('retries whole-request 429 and 503, and a connection lost after the bulk was applied', async () => {
    const { es, driver } = await setup();
    const items = sinkItems(generateEvents(5, { seed: 4 }));
    es.queueFaults('request-429', 'request-503', 'reset-after-apply');
    expect(await driver.send(itemsOf(items), signal())).toMatchObject({
      kind: 'retry',
      reason: 'status_429',
    });
    expect(await driver.send(itemsOf(items), signal())).toMatchObject({
      kind: 'retry',
      reason: 'status_503',
    });
    expect(await driver.send(itemsOf(items), signal())).toMatchObject({ kind: 'retry', reason: 'network' });
    expect(await driver.send(itemsOf(items), signal())).toEqual({ kind: 'ok' });
    expect(es.documents()).toHaveLength(5);
    expect(es.stats.conflicts).toBe(5);
  });

  it('halts on wrong credentials without showing them', async () => {
    const { driver } = await setup({
      authorization: `Basic ${Buffer.from('elastic:wrong-pass').toString('base64')}`,
    });
    const outcome = await driver.send(itemsOf(sinkItems(generateEvents(1, { seed: 5 }))), signal());
    expect(outcome.kind).toBe('permanent');
    const message = (outcome as { error: Error }).error.message;
    expect(message).toContain('401 security_exception: unable to authenticate user [elastic]');
    expect(message).toContain("check the sink's auth");
    expect(message).not.toContain('wrong-pass');
  });

  it('authenticates with an API key', async () => {
    const { es, driver } = await setup(
      { authorization: 'ApiKey a2V5aWQ6a2V5c2VjcmV0' },
      { apiKeys: ['a2V5aWQ6a2V5c2VjcmV0'] },
    );
    expect(await driver.send(itemsOf(sinkItems(generateEvents(2, { seed: 6 }))), signal())).toEqual({
      kind: 'ok',
    });
    expect(es.documents()).toHaveLength(2);
  });

  it('refuses a server that is not Elasticsearch unless api_version is opensearch', async () => {
    const first = await setup({}, { flavor: 'opensearch' });
    const outcome = await first.driver.send(itemsOf(sinkItems(generateEvents(1, { seed: 7 }))), signal());
    expect(outcome.kind).toBe('permanent');
    expect((outcome as { error: Error }).error.message).toContain('set api_version: opensearch');
    await first.driver.close();
    await first.es.stop();

    const { es, driver } = await setup({ apiVersion: 'opensearch' }, { flavor: 'opensearch' });
    expect(await driver.send(itemsOf(sinkItems(generateEvents(3, { seed: 8 }))), signal())).toEqual({
      kind: 'ok',
    });
    expect(es.documents()).toHaveLength(3);
  });

  it('moves to the next endpoint on every request', async () => {
    const first = await setup();
    await first.driver.close();
    const next = new ElasticsearchDriver({
      endpoints: [new URL('https://127.0.0.1:1'), new URL(first.es.origin)],
      apiVersion: 'elasticsearch',
      index: compileIndexTemplate('okta'),
      authorization: basic,
      connect: { ca: pki.caCert },
      userAgent: 'oktail/test',
    });
    driver = next;
    const items = sinkItems(generateEvents(2, { seed: 9 }));
    const down = await next.send(itemsOf(items), signal());
    expect(down).toMatchObject({ kind: 'retry', reason: 'network' });
    expect((down as { error: Error }).error.message).toContain('ECONNREFUSED');
    expect(await next.send(itemsOf(items), signal())).toEqual({ kind: 'ok' });
  });
});
