import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EsEmulator } from './support/es-emulator.js';
import { HecEmulator, type HecToken } from './support/hec-emulator.js';
import { readState, runCli, secrets, startOrg, type TestOrg } from './support/harness.js';
import { taggedBytes } from './support/sink-items.js';

let org: TestOrg | undefined;
let es: EsEmulator | undefined;
let hec: HecEmulator | undefined;
afterEach(async () => {
  await Promise.all([org?.stop(), es?.stop(), hec?.stop()]);
  org = es = hec = undefined;
});

const HOUR = 3600_000;
const HEC_TOKEN = 'feedface-1234-4abc-8def-0123456789ab';
const ES_PASSWORD = 'es-integration-password-3';
secrets.add(HEC_TOKEN);
secrets.add(ES_PASSWORD);

async function setup(events: number, token: Partial<HecToken> = {}) {
  org = await startOrg();
  org.emulator.appendEvents(events, { publishedStart: Date.now() - HOUR, seed: 12 });
  es = new EsEmulator({ tls: org.pki.server, users: [{ user: 'elastic', password: ES_PASSWORD }] });
  hec = new HecEmulator({
    tls: org.pki.server,
    tokens: [{ value: HEC_TOKEN, ack: true, ...token }],
    indexDelayMs: 5,
  });
  const esOrigin = await es.start();
  const hecOrigin = await hec.start();
  const tls = ['    tls:', `      ca_file: ${JSON.stringify(org.files.caFile)}`];
  const lines = [
    `data_dir: ${JSON.stringify(join(org.dir, 'data'))}`,
    'sources:',
    '  okta:',
    '    type: okta',
    `    domain: "${org.domain}"`,
    `    start_from: ${new Date(Date.now() - 2 * HOUR).toISOString()}`,
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
    '    auth: { strategy: basic, user: elastic, password: "${ES_PASSWORD}" }',
    ...tls,
    '  splunk:',
    '    type: splunk_hec',
    '    inputs: [okta]',
    `    endpoint: ${JSON.stringify(hecOrigin)}`,
    '    token: ${HEC_TOKEN}',
    '    index: okta',
    '    ack_poll_interval_ms: 20',
    ...tls,
  ];
  const file = join(org.dir, 'oktail.yaml');
  await writeFile(file, lines.join('\n') + '\n');
  return { file, env: { OKTA_API_TOKEN: org.token, HEC_TOKEN, ES_PASSWORD } };
}

describe('splunk_hec and elasticsearch sinks in the collector', () => {
  it('validate --print hides the HEC token and the Elasticsearch password', async () => {
    const { file, env } = await setup(1);
    const printed = await runCli(['validate', '--print', '-c', file], { env });
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toContain('splunk_hec');
    expect(printed.stdout).toContain('[redacted]');
  });

  it('delivers every event to both, byte for byte', async () => {
    const { file, env } = await setup(2500);
    const result = await runCli(['run', '--once', '-c', file], { env });
    expect(result.code, result.stderr).toBe(0);
    // Requests run concurrently (request.concurrency 2), so compare in uuid order: each event exactly once.
    const served = [...org!.emulator.allEvents()].sort((a, b) => a.uuid.localeCompare(b.uuid));
    const expected = served.map((e) => taggedBytes(e).toString('utf8'));
    const docs = [...es!.documents()].sort((a, b) => a.id.localeCompare(b.id));
    expect(docs.map((d) => d.id)).toEqual(served.map((e) => e.uuid));
    expect(docs.map((d) => d.source)).toEqual(expected);
    const uuidOf = (text: string) => (JSON.parse(text) as { uuid: string }).uuid;
    const indexed = hec!.events().map((e) => e.event);
    expect(indexed.sort((a, b) => uuidOf(a).localeCompare(uuidOf(b)))).toEqual(expected);
    expect(hec!.events()[0]).toMatchObject({ index: 'okta', sourcetype: 'OktaIM2:log', host: org!.domain });
  });

  it('halts with the fix when the HEC token has no indexer acknowledgement, committing nothing', async () => {
    const { file, env } = await setup(300, { ack: false });
    const result = await runCli(['run', '--once', '-c', file], { env });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      'Enable indexer acknowledgement on the token, or set acknowledgements: false',
    );
    expect(result.stderr).toContain('splunk');
    const state = await readState(org!).catch(() => null);
    expect(state?.sources.okta?.state.last_uuid).toBeUndefined();
  });

  it('halts naming the event Elasticsearch cannot map, and does not commit its page', async () => {
    const { file, env } = await setup(300);
    const bad = org!.emulator.allEvents()[123]!.uuid;
    es!.rejectDocuments((doc) =>
      doc.id === bad ? 'failed to parse field [client.geographicalContext] of type [keyword]' : null,
    );
    const result = await runCli(['run', '--once', '-c', file], { env });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`event ${bad}`);
    expect(result.stderr).toContain('mapper_parsing_exception');
    const state = await readState(org!).catch(() => null);
    expect(state?.sources.okta?.state.last_uuid).toBeUndefined();
  });
});
