import {
  CreateBucketCommand,
  DeleteBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { createTableSql } from '../../src/sinks/postgres/driver.js';
import { secrets } from './harness.js';
import { PostgresServer } from './postgres.js';
import { RsyslogServer } from './rsyslog.js';
import { S3Server } from './s3.js';
import type { ContractEntry } from './sink-contract.js';

/*
 * Contract-suite entries for the sinks whose destinations are real servers: PostgreSQL (initdb), rsyslog
 * and s3rver, each started per test.
 */

const uuidOf = (json: string) => String((JSON.parse(json) as { uuid: unknown }).uuid);

export const postgresEntry: ContractEntry = {
  type: 'postgres',
  guarantee: 'exactly-once',
  start: async () => {
    const server = new PostgresServer();
    await server.start();
    const password = `pg-${randomBytes(9).toString('base64url')}`;
    secrets.add(password);
    await server.query(`CREATE ROLE oktail LOGIN PASSWORD '${password}'`);
    await server.query('CREATE DATABASE security');
    // Made by the "DBA" so that a revoked grant is a permanent error the sink must halt on.
    await server.query(createTableSql('okta_events'), [], 'security');
    // An extra column with a default is allowed; here it records arrival order for `read`.
    await server.query('ALTER TABLE okta_events ADD COLUMN seq bigserial', [], 'security');
    const grant = () =>
      server.query(
        'GRANT INSERT, SELECT ON okta_events TO oktail; GRANT USAGE ON SEQUENCE okta_events_seq_seq TO oktail',
        [],
        'security',
      );
    await grant();
    let stopped = false;
    return {
      sinkLines: [
        '  dest:',
        '    type: postgres',
        '    inputs: [okta]',
        '    url: ${PG_URL}',
        '    request: { timeout_secs: 10, retry_initial_backoff_secs: 0.05, retry_max_duration_secs: 1 }',
      ],
      env: { PG_URL: server.url('security', 'oktail', password) },
      unorderedWithinPage: true,
      read: async () => {
        if (stopped) return [];
        const { rows } = await server.query<{ uuid: string }>(
          'SELECT uuid FROM okta_events ORDER BY seq',
          [],
          'security',
        );
        return rows.map((r) => r.uuid);
      },
      down: async () => {
        await server.stopServer('immediate');
        stopped = true;
      },
      up: async () => {
        if (stopped) await server.startServer();
        stopped = false;
        await grant();
      },
      permanentError: async () => {
        await server.query('REVOKE INSERT ON okta_events FROM oktail', [], 'security');
      },
      stop: () => server.stop(),
    };
  },
};

export const syslogEntry: ContractEntry = {
  type: 'syslog',
  guarantee: 'at-least-once',
  start: async () => {
    const server = new RsyslogServer();
    await server.start();
    return {
      sinkLines: [
        '  dest:',
        '    type: syslog',
        '    inputs: [okta]',
        `    address: 127.0.0.1:${server.port}`,
        '    mode: tcp',
        '    batch: { max_events: 1000, timeout_secs: 0.2 }',
        '    request: { timeout_secs: 5, retry_initial_backoff_secs: 0.05, retry_max_duration_secs: 1 }',
      ],
      read: async (_stdout, atLeast) =>
        (atLeast === undefined ? await server.received() : await server.waitFor(atLeast)).map((r) =>
          uuidOf(r.msg),
        ),
      down: () => server.pause(),
      up: () => server.resume(),
      stop: () => server.stop(),
    };
  },
};

export const s3Entry: ContractEntry = {
  type: 's3',
  guarantee: 'exactly-once',
  start: async () => {
    const server = new S3Server(['contract']);
    await server.start();
    const client = server.client();
    let paused = false;
    return {
      sinkLines: server
        .sinkLines('dest', [
          // Pages of 1000, 1000 and 500 events become two objects, the second of two pages.
          '  batch: { max_events: 1500, timeout_secs: 0.5 }',
          '  request: { timeout_secs: 5, retry_initial_backoff_secs: 0.05, retry_max_duration_secs: 1 }',
          '  auth: { access_key_id: "${S3_KEY_ID}", secret_access_key: "${S3_SECRET}" }',
        ])
        .map((line) => `  ${line}`),
      env: { S3_KEY_ID: server.accessKeyId, S3_SECRET: server.secretAccessKey },
      heldPages: 1,
      // Keys start with the source and the first event's published: in this suite's data, arrival order.
      read: async () => {
        if (paused) return [];
        let listed;
        try {
          listed = await client.send(new ListObjectsV2Command({ Bucket: 'contract' }));
        } catch {
          return []; // the bucket is deleted while the suite provokes a permanent error
        }
        const keys = (listed.Contents ?? []).map((o) => o.Key!).sort();
        const uuids: string[] = [];
        for (const key of keys) {
          const out = await client.send(new GetObjectCommand({ Bucket: 'contract', Key: key }));
          const text = gunzipSync(Buffer.from(await out.Body!.transformToByteArray())).toString('utf8');
          uuids.push(...text.trimEnd().split('\n').map(uuidOf));
        }
        return uuids;
      },
      down: async () => {
        await server.pause();
        paused = true;
      },
      up: async () => {
        await server.resume();
        paused = false;
        try {
          await client.send(new CreateBucketCommand({ Bucket: 'contract' }));
        } catch {
          // It exists.
        }
      },
      // NoSuchBucket: S3's answer for a bucket that is gone, which retrying cannot fix.
      permanentError: async () => {
        await client.send(new DeleteBucketCommand({ Bucket: 'contract' }));
      },
      stop: async () => {
        client.destroy();
        await server.stop();
      },
    };
  },
};
