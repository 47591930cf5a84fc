import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EsEmulator } from './es-emulator.js';
import { HecEmulator } from './hec-emulator.js';
import { HttpIngest } from './http-ingest.js';
import { completeLines, secrets, type TestOrg } from './harness.js';

/**
 * One sink type in the contract suite (test/sink-contract.test.ts). The suite runs the real CLI against
 * the Okta emulator with the sink configured as `dest` (inputs: [okta]) and checks what the destination
 * holds. A sink joins the suite with one entry: a factory starting its destination.
 */
export interface ContractEntry {
  type: string;
  guarantee: 'exactly-once' | 'at-least-once';
  start(org: TestOrg): Promise<ContractDestination>;
}

export interface ContractDestination {
  /** The sink's config lines, under `sinks:` (start with `  dest:`). */
  sinkLines: string[];
  /** Environment for the CLI (credentials referenced as ${VAR} by sinkLines). */
  env?: Record<string, string>;
  /**
   * uuids the destination holds, in arrival order. `stdout` is what the CLI printed so far. `atLeast`: a
   * destination that stores asynchronously after accepting (rsyslog writes its file after the socket took the
   * bytes) first waits until it holds that many.
   */
  read(stdout: string, atLeast?: number): Promise<string[]>;
  /**
   * A page may reach the destination as several requests at once, so events of one page can arrive in
   * another order (postgres: two transactions per page, on two connections); each must still arrive once.
   */
  unorderedWithinPage?: boolean;
  /**
   * Pages the sink holds before it must deliver them (s3 writes one object of several pages): while the
   * destination is down, the source fetches that many pages more before it waits.
   */
  heldPages?: number;
  /** Makes the destination unreachable or failing transiently (absent: it cannot go down). */
  down?(): Promise<void>;
  up?(): Promise<void>;
  /** Makes the destination answer a permanent error (absent: it has none). */
  permanentError?(): Promise<void>;
  stop(): Promise<void>;
}

const uuidsOf = (lines: string[]) => lines.map((l) => String((JSON.parse(l) as { uuid: unknown }).uuid));

export const fileEntry: ContractEntry = {
  type: 'file',
  guarantee: 'exactly-once',
  start: async (org) => {
    const path = join(org.dir, 'out', 'dest.ndjson');
    return {
      sinkLines: ['  dest:', '    type: file', '    inputs: [okta]', `    path: ${JSON.stringify(path)}`],
      // Only complete lines: the collector may be in the middle of writing the next page (a torn line left
      // at the end would show as a missing event).
      read: async () => uuidsOf(await completeLines(path)),
      stop: async () => {},
    };
  },
};

export const stdoutEntry: ContractEntry = {
  type: 'stdout',
  guarantee: 'at-least-once',
  start: async () => ({
    sinkLines: ['  dest:', '    type: stdout', '    inputs: [okta]'],
    // Only complete lines: the process may be in the middle of writing the next one.
    read: async (stdout) =>
      uuidsOf(
        stdout
          .slice(0, stdout.lastIndexOf('\n') + 1)
          .split('\n')
          .filter((l) => l.startsWith('{')),
      ),
    stop: async () => {},
  }),
};

export const httpEntry: ContractEntry = {
  type: 'http',
  guarantee: 'at-least-once',
  start: async (org) => {
    const ingest = new HttpIngest(org.pki);
    const url = await ingest.start();
    const token = `ingest-${Math.random().toString(36).slice(2)}-token`;
    secrets.add(token);
    ingest.expectAuthorization = `Bearer ${token}`;
    const ca = join(org.dir, 'ingest-ca.pem');
    await writeFile(ca, org.pki.caCert);
    return {
      sinkLines: [
        '  dest:',
        '    type: http',
        '    inputs: [okta]',
        `    uri: ${JSON.stringify(url)}`,
        '    compression: gzip',
        '    auth: { strategy: bearer, token: "${INGEST_TOKEN}" }',
        '    batch: { max_events: 400, timeout_secs: 0.2 }',
        '    request: { timeout_secs: 5, retry_initial_backoff_secs: 0.05, retry_max_duration_secs: 1 }',
        `    tls: { ca_file: ${JSON.stringify(ca)} }`,
      ],
      env: { INGEST_TOKEN: token },
      read: () => Promise.resolve(ingest.uuids()),
      down: () => {
        ingest.mode = { kind: 'status', status: 503, body: 'maintenance' };
        return Promise.resolve();
      },
      up: () => {
        ingest.mode = { kind: 'accept' };
        return Promise.resolve();
      },
      permanentError: () => {
        ingest.mode = { kind: 'status', status: 400, body: 'unknown index oktail' };
        return Promise.resolve();
      },
      stop: () => ingest.stop(),
    };
  },
};

/** Sink lines shared by the network sinks' entries: fast retries, the test CA. */
async function networkLines(org: TestOrg, name: string): Promise<string[]> {
  const ca = join(org.dir, `${name}-ca.pem`);
  await writeFile(ca, org.pki.caCert);
  return [
    '    request: { timeout_secs: 5, retry_initial_backoff_secs: 0.05, retry_max_duration_secs: 1 }',
    `    tls: { ca_file: ${JSON.stringify(ca)} }`,
  ];
}

export const splunkHecEntry: ContractEntry = {
  type: 'splunk_hec',
  guarantee: 'at-least-once',
  start: async (org) => {
    const token = `hec-${Math.random().toString(36).slice(2)}-token`;
    secrets.add(token);
    const hec = new HecEmulator({
      tls: org.pki.server,
      tokens: [{ value: token, ack: true }],
      indexDelayMs: 5,
    });
    const url = await hec.start();
    return {
      sinkLines: [
        '  dest:',
        '    type: splunk_hec',
        '    inputs: [okta]',
        `    endpoint: ${JSON.stringify(url)}`,
        '    token: ${HEC_TOKEN}',
        '    ack_poll_interval_ms: 20',
        ...(await networkLines(org, 'hec')),
      ],
      env: { HEC_TOKEN: token },
      read: () =>
        Promise.resolve(hec.events().map((e) => String((JSON.parse(e.event) as { uuid: unknown }).uuid))),
      down: () => {
        hec.mode = 'busy';
        return Promise.resolve();
      },
      up: () => {
        hec.mode = 'ok';
        return Promise.resolve();
      },
      permanentError: () => {
        hec.mode = 'token-disabled';
        return Promise.resolve();
      },
      stop: () => hec.stop(),
    };
  },
};

export const elasticsearchEntry: ContractEntry = {
  type: 'elasticsearch',
  guarantee: 'exactly-once',
  start: async (org) => {
    const password = `es-${Math.random().toString(36).slice(2)}-password`;
    secrets.add(password);
    const es = new EsEmulator({ tls: org.pki.server, users: [{ user: 'oktail', password }] });
    const url = await es.start();
    return {
      sinkLines: [
        '  dest:',
        '    type: elasticsearch',
        '    inputs: [okta]',
        `    endpoints: [${JSON.stringify(url)}]`,
        '    auth: { strategy: basic, user: oktail, password: "${ES_PASSWORD}" }',
        ...(await networkLines(org, 'es')),
      ],
      env: { ES_PASSWORD: password },
      read: () => Promise.resolve(es.documents().map((d) => d.id)),
      down: () => {
        es.unavailable = true;
        return Promise.resolve();
      },
      up: () => {
        es.unavailable = false;
        es.rejectDocuments(null);
        return Promise.resolve();
      },
      permanentError: () => {
        es.rejectDocuments(() => 'failed to parse field [published] of type [long]');
        return Promise.resolve();
      },
      stop: () => es.stop(),
    };
  },
};
