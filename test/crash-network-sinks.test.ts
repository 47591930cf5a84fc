import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventRecord } from '../src/emulator/events.js';
import { EsEmulator } from './support/es-emulator.js';
import { HecEmulator } from './support/hec-emulator.js';
import { collect, readState, runCli, secrets, spawnCli, startOrg, type TestOrg } from './support/harness.js';
import { taggedBytes } from './support/sink-items.js';

let org: TestOrg | undefined;
let es: EsEmulator | undefined;
let hec: HecEmulator | undefined;
afterEach(async () => {
  await Promise.all([org?.stop(), es?.stop(), hec?.stop()]);
  org = es = hec = undefined;
});

const HOUR = 3600_000;
const HEC_TOKEN = 'c0ffee00-1234-4abc-8def-0123456789ab';
const ES_PASSWORD = 'es-crash-test-password-7';
secrets.add(HEC_TOKEN);
secrets.add(ES_PASSWORD);

async function writeSinkConfig(org: TestOrg, esOrigin: string, hecOrigin: string): Promise<string> {
  const retry = [
    '    request:',
    '      retry_initial_backoff_secs: 0.02',
    '      retry_max_duration_secs: 1',
  ];
  const tls = ['    tls:', `      ca_file: ${JSON.stringify(org.files.caFile)}`];
  const lines = [
    `data_dir: ${JSON.stringify(join(org.dir, 'data'))}`,
    'sources:',
    '  okta:',
    '    type: okta',
    `    domain: "${org.domain}"`,
    `    start_from: ${new Date(Date.now() - 2 * HOUR).toISOString()}`,
    '    request_timeout_secs: 10',
    '    retry: { initial_backoff_ms: 20, max_backoff_secs: 1 }',
    '    auth:',
    '      token: ${OKTA_API_TOKEN}',
    '    tls:',
    '      enabled: true',
    `      ca_file: ${JSON.stringify(org.files.caFile)}`,
    'sinks:',
    '  elastic:',
    '    type: elasticsearch',
    '    inputs: [okta]',
    `    endpoints: [${JSON.stringify(esOrigin)}]`,
    '    index: okta-%Y.%m.%d',
    '    auth: { strategy: basic, user: elastic, password: "${ES_PASSWORD}" }',
    '    batch: { max_events: 400, timeout_secs: 0 }',
    ...retry,
    ...tls,
    '  splunk:',
    '    type: splunk_hec',
    '    inputs: [okta]',
    `    endpoint: ${JSON.stringify(hecOrigin)}`,
    '    token: ${HEC_TOKEN}',
    '    ack_poll_interval_ms: 20',
    '    ack_timeout_secs: 3',
    '    batch: { max_events: 400, timeout_secs: 0 }',
    ...retry,
    ...tls,
  ];
  const file = join(org.dir, 'oktail.yaml');
  await writeFile(file, lines.join('\n') + '\n');
  return file;
}

/** Index of the event a checkpoint's `last_uuid` names in what Okta served, +1: the committed prefix. */
function committedPrefix(served: readonly EventRecord[], lastUuid: unknown): number {
  if (typeof lastUuid !== 'string') return 0;
  const at = served.findIndex((e) => e.uuid === lastUuid);
  if (at < 0) throw new Error(`the checkpoint names ${lastUuid}, which Okta never served`);
  return at + 1;
}

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
  return true;
}

describe('crash recovery with network sinks', () => {
  it('ends with every event once in Elasticsearch and at least once in HEC, across SIGKILLs and HEC restarts', async () => {
    org = await startOrg({ latencyMs: 5 });
    org.emulator.appendEvents(24_000, { publishedStart: Date.now() - HOUR, seed: 31, outOfOrder: 0.05 });
    es = new EsEmulator({ tls: org.pki.server, users: [{ user: 'elastic', password: ES_PASSWORD }] });
    hec = new HecEmulator({
      tls: org.pki.server,
      tokens: [{ value: HEC_TOKEN, ack: true }],
      indexDelayMs: 15,
    });
    const file = await writeSinkConfig(org, await es.start(), await hec.start());
    // The destinations fail now and then, from fixed seeds: overload, lost connections, and HEC restarts
    // that forget batches it accepted but had not indexed.
    es.randomFaults({
      probability: 0.25,
      seed: 5,
      kinds: ['request-429', 'request-503', 'item-429', 'reset-after-apply'],
    });
    hec.randomFaults({ probability: 0.25, seed: 6, kinds: ['busy', 'reset', 'restart-after-accept'] });
    const env = { OKTA_API_TOKEN: org.token, HEC_TOKEN, ES_PASSWORD };

    const ROUNDS = 8;
    const STEP = 3000;
    let kills = 0;
    const committed: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 3 === 2) {
        org.emulator.appendEvents(500, { publishedStart: Date.now() - HOUR / 2, outOfOrder: 0.3 });
      }
      // Kill once a destination received STEP more events than before this run (alternating which):
      // the instant depends on progress, not on the machine's speed.
      const progress = round % 2 === 0 ? () => es!.stats.itemsReceived : () => hec!.stats.eventsAccepted;
      const target = progress() + STEP;
      const child = spawnCli(['run', '--once', '-c', file], env);
      const done = collect(child, performance.now(), 120_000);
      const reached = await until(() => progress() >= target || child.exitCode !== null, 100_000);
      expect(reached, 'the collector made no progress').toBe(true);
      expect(child.exitCode, 'the collector finished before the kill point').toBeNull();
      child.kill('SIGKILL');
      kills++;
      const result = await done;
      expect(result.signal).toBe('SIGKILL');

      // Whatever the checkpoint covers is in both destinations: it never moves past undelivered events.
      const state = await readState(org).catch(() => null);
      const served = org.emulator.allEvents();
      const covered = committedPrefix(served, state?.sources.okta?.state.last_uuid);
      const inEs = new Set(es.documents().map((d) => d.id));
      const inHec = new Set(hec.events().map((e) => (JSON.parse(e.event) as { uuid: string }).uuid));
      const missing = served.slice(0, covered).filter((e) => !inEs.has(e.uuid) || !inHec.has(e.uuid));
      expect(missing.length, `round ${round}: ${covered} committed events`).toBe(0);
      committed.push(covered);
    }

    es.randomFaults(null);
    hec.randomFaults(null);
    const final = await runCli(['run', '--once', '-c', file], { env, timeoutMs: 120_000 });
    expect(final.code, final.stderr).toBe(0);

    const served = org.emulator.allEvents();
    const expected = new Map(served.map((e) => [e.uuid, taggedBytes(e).toString('utf8')]));
    // Elasticsearch: every uuid exactly once, byte for byte.
    const docs = es.documents();
    expect(docs.length).toBe(served.length);
    expect(new Set(docs.map((d) => d.id)).size).toBe(docs.length);
    for (const doc of docs) expect(doc.source, doc.id).toBe(expected.get(doc.id));
    // HEC: every event at least once, byte for byte.
    const counts = new Map<string, number>();
    for (const event of hec.events()) {
      const uuid = (JSON.parse(event.event) as { uuid: string }).uuid;
      expect(event.event, uuid).toBe(expected.get(uuid));
      counts.set(uuid, (counts.get(uuid) ?? 0) + 1);
    }
    expect(served.filter((e) => !counts.has(e.uuid))).toEqual([]);
    const duplicates = [...counts.values()].reduce((sum, n) => sum + n - 1, 0);

    expect(kills).toBe(ROUNDS);
    expect(es.stats.conflicts).toBeGreaterThan(0);
    expect(hec.stats.restarts).toBeGreaterThan(0);
    expect(hec.stats.eventsLost).toBeGreaterThan(0);
    console.log(
      `network crash loop: ${kills} SIGKILLs (committed after each: ${committed.join(', ')}), ${served.length} events; Elasticsearch ${es.stats.conflicts} replayed creates ` +
        `answered 409, ${es.stats.requestFaults} request faults; HEC ${hec.stats.restarts} restarts losing ` +
        `${hec.stats.eventsLost} accepted events, ${duplicates} duplicate events indexed`,
    );
  }, 300_000);
});
