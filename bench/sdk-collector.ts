/*
 * A collector written the way the README of Okta's Node SDK (@okta/okta-sdk-nodejs 8) shows: a Client with
 * the org URL and an API token, `systemLogApi.listLogEvents({ since })`, and `collection.each(...)`, which
 * follows the Link headers and "resolves once the first empty page is reached" (a polling request always
 * has a next link, so that empty page is what ends it). Each event is appended to a file as JSON. The one
 * departure from the README: `limit: 1000`, as Okta's API reference advises, instead of the default 100.
 * The emulator's CA comes in through NODE_EXTRA_CA_CERTS, which the SDK's node-fetch honours.
 */
import { createWriteStream } from 'node:fs';
import okta from '@okta/okta-sdk-nodejs';

export interface SdkConfig {
  origin: string;
  token: string;
  since: string;
  out: string;
  deadlineMs: number;
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2] ?? '{}') as SdkConfig;
  setTimeout(() => {
    process.stderr.write('SDK collector: deadline passed\n');
    process.exit(3);
  }, c.deadlineMs).unref();
  const client = new okta.Client({ orgUrl: c.origin, token: c.token });
  const out = createWriteStream(c.out, { flags: 'a' });
  const collection = await client.systemLogApi.listLogEvents({ since: c.since, limit: 1000 });
  await collection.each((event) => {
    if (out.write(JSON.stringify(event) + '\n')) return;
    return new Promise<boolean>((resolve) => out.once('drain', () => resolve(true)));
  });
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`SDK collector failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
