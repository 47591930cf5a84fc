/*
 * The baseline: what a careful collector does when written the obvious way. undici request, JSON.parse of
 * the page, JSON.stringify of every event with the tag, append to a file, fsync, then an atomic checkpoint
 * commit of the next link per page, like oktail. On a 429 it waits for the reset (read against `Date`, plus
 * the second Okta's SDK advises). It stops on a short page, as oktail does.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';

export interface NaiveConfig {
  origin: string;
  caFile: string;
  token: string;
  since: string;
  out: string;
  stateDir: string;
  maxPages: number;
  deadlineMs: number;
}

const LIMIT = 1000;

function nextLink(header: string | string[] | undefined): string | null {
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  return /<([^>]+)>;\s*rel="next"/.exec(text)?.[1] ?? null;
}

function commit(dir: string, next: string): void {
  const tmp = join(dir, 'state.json.tmp');
  const fd = openSync(tmp, 'w', 0o600);
  writeSync(fd, JSON.stringify({ next }));
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, join(dir, 'state.json'));
  const dirFd = openSync(dir, 'r');
  fsyncSync(dirFd);
  closeSync(dirFd);
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2] ?? '{}') as NaiveConfig;
  const deadline = Date.now() + c.deadlineMs;
  const dispatcher = new Agent({ connect: { ca: readFileSync(c.caFile) }, connections: 1 });
  const out = openSync(c.out, 'a', 0o640);
  let url = `${c.origin}/api/v1/logs?since=${encodeURIComponent(c.since)}&sortOrder=ASCENDING&limit=${LIMIT}`;
  for (let requests = 0; requests < c.maxPages; requests++) {
    if (Date.now() > deadline) throw new Error('deadline passed');
    const res = await request(url, {
      dispatcher,
      headers: { authorization: `SSWS ${c.token}`, accept: 'application/json' },
    });
    if (res.statusCode === 429) {
      await res.body.dump();
      const reset = Number(res.headers['x-rate-limit-reset']) * 1000;
      const date = Date.parse(String(res.headers['date']));
      await new Promise((r) => setTimeout(r, Math.max(0, reset - date) + 1000));
      continue;
    }
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${await res.body.text()}`);
    const events = JSON.parse(await res.body.text()) as Record<string, unknown>[];
    let lines = '';
    for (const event of events) lines += JSON.stringify({ ...event, _okta_event_type: 'systemLog' }) + '\n';
    writeSync(out, lines);
    fsyncSync(out);
    const next = nextLink(res.headers['link']);
    if (next === null) throw new Error('a polling response without a next link');
    commit(c.stateDir, next);
    if (events.length < LIMIT) break;
    url = next;
  }
  closeSync(out);
  await dispatcher.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`naive collector failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
