import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { buildPipeline } from '../src/pipeline/build.js';
import { readinessSources } from '../src/cli/run.js';
import { ApiServer } from '../src/telemetry/http-server.js';
import { createLogger } from '../src/telemetry/logger.js';
import { MetricsTelemetry } from '../src/telemetry/metrics.js';
import { LogTelemetry } from '../src/telemetry/telemetry.js';
import {
  HOUR,
  ago,
  assertNoSecret,
  readLines,
  sleep,
  useOrg,
  writeConfig,
  type TestOrg,
} from './support/harness.js';

let org: TestOrg | undefined;
let api: ApiServer | undefined;
const startOrg = useOrg();
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

/** `name{labels} value` lines of a Prometheus exposition. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** A collector wired like `oktail run`, with the log captured line by line. */
async function collector(config: Config) {
  const lines: string[] = [];
  const log = createLogger({ level: 'trace', destination: { write: (line: string) => lines.push(line) } });
  const metrics = new MetricsTelemetry({
    next: new LogTelemetry(log),
    sources: readinessSources(config),
    sinks: Object.entries(config.sinks).map(([name, s]) => ({ name, inputs: s.inputs })),
    version: 'test',
  });
  api = new ApiServer({ host: '127.0.0.1', port: 0, endpoints: metrics, log });
  const url = await api.start();
  return { lines, log, metrics, url };
}

async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return samples(await res.text());
}

describe('metrics against the emulator', () => {
  it('counts exactly what the emulator served, including retried 500s and 429s', async () => {
    org = await startOrg({ rateLimit: { limit: 1000, windowMs: 1000 } });
    const events = org.emulator.appendEvents(2500, { publishedStart: Date.now() - HOUR, stepMs: 1000 });
    org.emulator.injectFaults([
      { kind: 'status', status: 500 },
      { kind: 'delay', ms: 0 },
      { kind: 'status', status: 429 },
    ]);
    const { file, out } = await writeConfig(org, {
      startFrom: ago(2 * HOUR),
    });
    const config = await loadConfig(file, org.env);
    const { lines, log, metrics, url } = await collector(config);

    const built = await buildPipeline(config, { log, telemetry: metrics, once: true });
    const runStarted = Date.now();
    try {
      const outcomes = await built.pipeline.run(new AbortController().signal);
      expect(outcomes.map((o) => o.status)).toEqual(['completed']);
    } finally {
      await built.close();
    }

    const stats = org.emulator.stats();
    const m = await scrape(url);
    const written = (await readLines(out)).length;
    expect(written).toBe(2500);
    expect(m.get('oktail_source_events_received_total{source="okta"}')).toBe(stats.eventsServed);
    expect(m.get('oktail_sink_events_written_total{sink="archive",source="okta"}')).toBe(written);
    expect(m.get('oktail_source_events_dropped_total{source="okta"}')).toBe(0);
    for (const [status, count] of Object.entries(stats.byStatus)) {
      expect(m.get(`oktail_source_requests_total{source="okta",status="${status}"}`)).toBe(count);
    }
    expect(stats.byStatus['500']).toBe(1);
    expect(m.get('oktail_source_rate_limited_total{source="okta"}')).toBe(stats.rateLimited);
    expect(m.get('oktail_source_retries_total{source="okta",reason="OKTA_FETCH_FAILED"}')).toBe(1);
    expect(m.get('oktail_source_retries_total{source="okta",reason="OKTA_RATE_LIMITED"}')).toBe(1);
    expect(m.get('oktail_source_rate_limit_limit{source="okta"}')).toBe(1000);
    // Three full pages of 1000 plus the short last page, each committed.
    expect(m.get('oktail_checkpoint_commits_total{source="okta"}')).toBe(3);
    expect(m.get('oktail_checkpoint_commit_duration_seconds_count{source="okta"}')).toBe(3);
    expect(m.get('oktail_source_cycles_total{source="okta"}')).toBe(1);
    expect(m.get('oktail_source_halted{source="okta"}')).toBe(0);
    const newest = Date.parse(events.at(-1)!.published) / 1000;
    expect(m.get('oktail_source_newest_event_timestamp_seconds{source="okta"}')).toBe(newest);
    const lag = m.get('oktail_source_lag_seconds{source="okta"}')!;
    // Measured at some instant of the run: between its start and the scrape, whatever the machine's speed.
    expect(lag).toBeGreaterThanOrEqual(Math.floor(runStarted / 1000 - newest) - 1);
    expect(lag).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000 - newest) + 1);

    // The log: valid JSON lines, one per happening, never the token.
    for (const line of lines) {
      expect(() => JSON.parse(line) as unknown).not.toThrow();
      assertNoSecret(line, 'the log');
    }
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const retries = parsed.filter((l) => l.msg === 'Request failed; will retry.');
    expect(retries.map((l) => [l.level, l.status, typeof l.retryInMs])).toEqual([
      ['warn', 500, 'number'],
      ['warn', 429, 'number'],
    ]);
    const cycle = parsed.find((l) => l.msg === 'Cycle finished.')!;
    expect(cycle).toMatchObject({ level: 'info', source: 'okta', events: 2500, pages: 3 });
    expect(typeof cycle.lag_secs).toBe('number');
    expect(parsed.filter((l) => l.level === 'info' || l.level === 'warn').length).toBeLessThan(10);
  });
});

describe('/health and /ready', () => {
  it('flips /ready to 503 naming the source when it halts, while /health stays 200', async () => {
    org = await startOrg({ latencyMs: 150 });
    org.emulator.appendEvents(6000, { publishedStart: Date.now() - HOUR, stepMs: 100 });
    const { file } = await writeConfig(org, { startFrom: ago(2 * HOUR) });
    const config = await loadConfig(file, org.env);
    const { metrics, log, url } = await collector(config);
    const built = await buildPipeline(config, { log, telemetry: metrics, once: false });
    const controller = new AbortController();
    const running = built.pipeline.run(controller.signal);
    try {
      // Mid-backfill: pages are being committed, so the source is ready before any cycle finished.
      for (let i = 0; i < 100; i++) {
        if ((await scrape(url)).get('oktail_checkpoint_commits_total{source="okta"}')! >= 1) break;
        await sleep(20);
      }
      const ready = await fetch(`${url}/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({
        status: 'ready',
        sources: [{ source: 'okta', ready: true }],
      });

      // The org now refuses the token's permission: a final answer that halts the source.
      org.emulator.injectFaults([{ kind: 'status', status: 403 }]);
      const outcomes = await running;
      expect(outcomes[0]).toMatchObject({ status: 'halted' });

      const notReady = await fetch(`${url}/ready`);
      expect(notReady.status).toBe(503);
      const body = (await notReady.json()) as {
        status: string;
        failing: string[];
        sources: { reason: string }[];
      };
      expect(body.status).toBe('not ready');
      expect(body.failing).toEqual(['okta']);
      expect(body.sources[0]!.reason).toMatch(/^halted: OKTA_AUTH: /);
      expect((await fetch(`${url}/health`)).status).toBe(200);
      const m = await scrape(url);
      expect(m.get('oktail_source_halted{source="okta"}')).toBe(1);
      expect(m.get('oktail_source_requests_total{source="okta",status="403"}')).toBe(1);
    } finally {
      controller.abort();
      await running.catch(() => undefined);
      await built.close();
    }
  });

  it('answers 404 for unknown paths and 405 for other methods', async () => {
    org = await startOrg();
    const { file } = await writeConfig(org);
    const config = await loadConfig(file, org.env);
    const { url } = await collector(config);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    expect((await fetch(`${url}/metrics`, { method: 'POST' })).status).toBe(405);
    const head = await fetch(`${url}/health`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });
});
