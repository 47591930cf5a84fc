import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '../../emulator/pki.js';
import { generateEvents } from '../../emulator/events.js';
import { HecEmulator, type HecEmulatorOptions, type HecToken } from '../../../test/support/hec-emulator.js';
import { sinkItems, taggedBytes } from '../../../test/support/sink-items.js';
import { HecDriver, type HecDriverOptions } from './driver.js';
import { itemsOf } from '../shared/network-sink.js';

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});

let hec: HecEmulator | undefined;
let driver: HecDriver | undefined;
afterEach(async () => {
  await driver?.close();
  await hec?.stop();
  driver = hec = undefined;
});

const TOKEN = '7f3c1a52-0000-4000-8000-1234567890ab';

async function setup(
  token: Partial<HecToken> = {},
  options: Partial<HecDriverOptions> = {},
  emulator: Partial<HecEmulatorOptions> = {},
) {
  hec = new HecEmulator({
    tls: pki.server,
    tokens: [{ value: TOKEN, ack: true, ...token }],
    indexDelayMs: 30,
    ...emulator,
  });
  const origin = await hec.start();
  driver = new HecDriver({
    endpoint: new URL(origin),
    token: TOKEN,
    fields: { source: null, sourcetype: 'OktaIM2:log', index: null },
    acknowledgements: true,
    ackTimeoutMs: 10_000,
    ackPollIntervalMs: 20,
    requestTimeoutMs: 5000,
    connect: { ca: pki.caCert },
    userAgent: 'oktail/test',
    ...options,
  });
  return { hec, driver };
}

const signal = () => AbortSignal.timeout(20_000);

describe('HEC driver', () => {
  it('counts a batch as delivered only once its ackId is reported indexed, with the bytes intact', async () => {
    const { hec, driver } = await setup();
    const records = generateEvents(60, { seed: 1 });
    const outcome = await driver.send(itemsOf(sinkItems(records)), signal());
    expect(outcome).toEqual({ kind: 'ok' });
    expect(hec.stats.ackPolls).toBeGreaterThan(0);
    const events = hec.events();
    expect(events.map((e) => e.event)).toEqual(records.map((r) => taggedBytes(r).toString('utf8')));
    expect(events[0]).toMatchObject({
      host: 'acme.okta.com',
      source: 'okta',
      sourcetype: 'OktaIM2:log',
      time: (Date.parse(records[0]!.published) / 1000).toFixed(3),
    });
  });

  it('sends a batch again when HEC restarts and forgets it before indexing (ack timeout)', async () => {
    const { hec, driver } = await setup({}, { ackTimeoutMs: 300 });
    hec.queueFaults('restart-after-accept');
    const items = sinkItems(generateEvents(5, { seed: 2 }));
    const first = await driver.send(itemsOf(items), signal());
    expect(first.kind).toBe('retry');
    expect((first as { error: Error }).error.message).toContain('within ack_timeout_secs');
    expect(hec.events()).toHaveLength(0);
    expect(await driver.send(itemsOf(items), signal())).toEqual({ kind: 'ok' });
    expect(hec.events()).toHaveLength(5);
  });

  it('sees a restart when HEC issues an ackId again, and sends the lost batch again at once', async () => {
    const { hec, driver } = await setup({}, { ackTimeoutMs: 60_000 });
    hec.queueFaults('restart-after-accept');
    const lost = sinkItems(generateEvents(3, { seed: 3 }));
    const pendingLost = driver.send(itemsOf(lost), signal());
    // Wait until HEC accepted (and forgot) the first batch, then send another: it gets ackId 0 again.
    await until(() => hec.stats.restarts === 1);
    const next = await driver.send(itemsOf(sinkItems(generateEvents(2, { seed: 4 }))), signal());
    expect(next).toEqual({ kind: 'ok' });
    const outcome = await pendingLost;
    expect(outcome.kind).toBe('retry');
    expect((outcome as { error: Error }).error.message).toContain('issued ackId 0 again');
    expect(hec.stats.eventsLost).toBe(3);
  });

  it('halts with the fix when the token has no indexer acknowledgement', async () => {
    const { driver } = await setup({ ack: false });
    const outcome = await driver.send(itemsOf(sinkItems(generateEvents(1, { seed: 5 }))), signal());
    expect(outcome.kind).toBe('permanent');
    expect((outcome as { error: Error }).error.message).toContain(
      'Enable indexer acknowledgement on the token, or set acknowledgements: false',
    );
  });

  it('halts with the fix when acknowledgements are off but the token requires a channel', async () => {
    const { driver } = await setup({ ack: true }, { acknowledgements: false });
    const outcome = await driver.send(itemsOf(sinkItems(generateEvents(1, { seed: 6 }))), signal());
    expect(outcome.kind).toBe('permanent');
    expect((outcome as { error: Error }).error.message).toContain('"Data channel is missing" (code 10)');
    expect((outcome as { error: Error }).error.message).toContain('set acknowledgements: true');
  });

  it('delivers without acknowledgement when they are off', async () => {
    const { hec, driver } = await setup({ ack: false }, { acknowledgements: false });
    expect(await driver.send(itemsOf(sinkItems(generateEvents(4, { seed: 7 }))), signal())).toEqual({
      kind: 'ok',
    });
    expect(hec.events()).toHaveLength(4);
    expect(hec.stats.ackPolls).toBe(0);
  });

  it('retries a busy server, halts on a wrong or disabled token and never shows the token', async () => {
    const { hec, driver } = await setup();
    const items = sinkItems(generateEvents(1, { seed: 8 }));
    hec.queueFaults('busy');
    const busy = await driver.send(itemsOf(items), signal());
    expect(busy).toMatchObject({ kind: 'retry', reason: 'hec_code_9' });
    await driver.close();

    const wrong = await setup({ value: 'another-token' });
    const invalid = await wrong.driver.send(itemsOf(items), signal());
    expect(invalid.kind).toBe('permanent');
    expect((invalid as { error: Error }).error.message).toContain('"Invalid token" (code 4)');
    expect((invalid as { error: Error }).error.message).not.toContain(TOKEN);
    await wrong.driver.close();
    await wrong.hec.stop();

    const disabled = await setup({ disabled: true });
    const outcome = await disabled.driver.send(itemsOf(items), signal());
    expect((outcome as { error: Error }).error.message).toContain('enable the HEC token');
  });

  it('names the event HEC refused and what to fix', async () => {
    const { driver } = await setup(
      { indexes: ['main'] },
      { fields: { source: null, sourcetype: 's', index: 'okta' } },
    );
    const items = sinkItems(generateEvents(2, { seed: 9 }));
    const outcome = await driver.send(itemsOf(items), signal());
    expect(outcome.kind).toBe('permanent');
    const message = (outcome as { error: Error }).error.message;
    expect(message).toContain('"Incorrect index" (code 7)');
    expect(message).toContain(`event ${items[0]!.uuid}`);
    expect(message).toContain("add it to the token, or change the sink's index");
  });

  it('asks to split a request larger than HEC accepts', async () => {
    const { driver } = await setup({}, {}, { maxContentLength: 1000 });
    const items = sinkItems(generateEvents(2, { seed: 9 }));
    expect((await driver.send(itemsOf(items), signal())).kind).toBe('split');
  });

  it('gives up waiting for an ack when the signal aborts', async () => {
    const { hec, driver } = await setup();
    hec.queueFaults('restart-after-accept');
    const controller = new AbortController();
    const pending = driver.send(itemsOf(sinkItems(generateEvents(1, { seed: 10 }))), controller.signal);
    await until(() => hec.stats.restarts === 1);
    controller.abort();
    expect((await pending).kind).toBe('retry');
  });
});

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
