/*
 * Another integration of the same org, for the shared-bucket scenario: it spends its part of the bucket at
 * a steady pace (one small request every `intervalMs`) with its own token, and counts the 429s it gets.
 * Runs until SIGTERM or `maxMs`, then prints its counts as one JSON line.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';

export interface OtherClientConfig {
  origin: string;
  caFile: string;
  token: string;
  since: string;
  intervalMs: number;
  maxMs: number;
}

export interface OtherClientReport {
  requests: number;
  ok: number;
  rateLimited: number;
  failed: number;
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2] ?? '{}') as OtherClientConfig;
  const dispatcher = new Agent({ connect: { ca: readFileSync(c.caFile) }, connections: 1 });
  const report: OtherClientReport = { requests: 0, ok: 0, rateLimited: 0, failed: 0 };
  const url = `${c.origin}/api/v1/logs?since=${encodeURIComponent(c.since)}&limit=1`;
  let stopping = false;
  process.once('SIGTERM', () => (stopping = true));
  const started = performance.now();
  // A fixed schedule, not "interval after the last answer": a slow answer must not lower its demand.
  for (let tick = 0; !stopping && performance.now() - started < c.maxMs; tick++) {
    const due = started + tick * c.intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (stopping) break;
    report.requests++;
    try {
      const res = await request(url, { dispatcher, headers: { authorization: `SSWS ${c.token}` } });
      await res.body.dump();
      if (res.statusCode === 200) report.ok++;
      else if (res.statusCode === 429) report.rateLimited++;
      else report.failed++;
    } catch {
      report.failed++;
    }
  }
  await dispatcher.close();
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`other client failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
