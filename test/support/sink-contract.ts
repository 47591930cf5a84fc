import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HttpIngest } from './http-ingest.js';
import { readLines, secrets, type TestOrg } from './harness.js';

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
  /** uuids the destination holds, in arrival order. `stdout` is what the CLI printed so far. */
  read(stdout: string): Promise<string[]>;
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
      read: async () => uuidsOf(await readLines(path)),
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
