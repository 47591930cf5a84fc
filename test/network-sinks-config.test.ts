import { afterEach, describe, expect, it } from 'vitest';
import { runCli, secrets, startOrg, type TestOrg } from './support/harness.js';
import { writeConfigWithSink } from './support/sink-config.js';

let org: TestOrg | undefined;
afterEach(async () => {
  await org?.stop();
  org = undefined;
});

const PG_PASSWORD = 'pg-password-never-shown';
const AWS_SECRET = 'aws-secret-never-shown';
secrets.add(PG_PASSWORD);
secrets.add(AWS_SECRET);

async function validate(sinkLines: string[], print = false) {
  org = await startOrg();
  const { file } = await writeConfigWithSink(org, sinkLines);
  return runCli(['validate', ...(print ? ['--print'] : []), '-c', file], {
    env: { OKTA_API_TOKEN: org.token, PG_PASSWORD, AWS_SECRET },
  });
}

describe('postgres, syslog and s3 sink config', () => {
  it('redacts the postgres url and the s3 keys in validate --print', async () => {
    const result = await validate(
      [
        'db:',
        '  type: postgres',
        '  inputs: [okta]',
        '  url: postgres://oktail:${PG_PASSWORD}@db.example.com:5432/security',
        'lake:',
        '  type: s3',
        '  inputs: [okta]',
        '  bucket: security-logs',
        '  region: us-east-1',
        '  batch: { max_events: 100000, max_bytes: 50000000, timeout_secs: 300 }',
        '  auth: { access_key_id: AKIAEXAMPLE, secret_access_key: "${AWS_SECRET}" }',
        'collector:',
        '  type: syslog',
        '  inputs: [okta]',
        '  address: siem.example.com:6514',
        '  mode: tls',
      ],
      true,
    );
    // runCli already fails the test if a secret shows up in the output.
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('"url": "[redacted]"');
    expect(result.stdout).toContain('"secret_access_key": "[redacted]"');
    expect(result.stdout).toContain('"facility": "authpriv"');
    expect(result.stdout).toContain('"key_prefix": "okta/%Y/%m/%d/"');
    expect(result.stdout).toContain('"timeout_secs": 300');
  });

  it('names the key and the fix for a too long s3 batch.timeout_secs, a bad key_prefix, udp syslog and a bad table', async () => {
    const result = await validate([
      'lake:',
      '  type: s3',
      '  inputs: [okta]',
      '  bucket: security-logs',
      '  region: us-east-1',
      '  key_prefix: "okta/%Y/%q/"',
      '  batch: { timeout_secs: 7200 }',
      'collector:',
      '  type: syslog',
      '  inputs: [okta]',
      '  address: siem.example.com:514',
      '  mode: udp',
      'db:',
      '  type: postgres',
      '  inputs: [okta]',
      '  url: postgres://oktail:${PG_PASSWORD}@db.example.com/security',
      '  table: "okta events; drop"',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/sinks\.lake\.batch\.timeout_secs \(line \d+\): must be at most 3600/);
    expect(result.stderr).toMatch(/sinks\.lake\.key_prefix \(line \d+\): has unknown fields %q/);
    expect(result.stderr).toMatch(/sinks\.collector\.mode \(line \d+\): must be one of tcp, tls/);
    expect(result.stderr).toMatch(/sinks\.db\.table \(line \d+\): must be a table name/);
  });
});
