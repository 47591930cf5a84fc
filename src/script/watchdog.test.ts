import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterEach, describe, expect, it } from 'vitest';

import type { CollectionLogic } from '../core/collection-logic.js';
import type { JsonObject } from '../core/json.js';
import { checkCollectionScript, loadCollectionScript } from './collection-script.js';
import { ScriptFailure } from './sandbox.js';
import { WATCHDOG_MARGIN_MS } from './script-host.js';

/**
 * One C call (string.find backtracking) that the count hook never gets to interrupt: it runs for far
 * longer than any test, so only the watchdog can end it.
 */
const STUCK = `local _ = ("a"):rep(300):find(("a*"):rep(6) .. "b")`;
const DEADLINE_MS = 50;
const limits = { deadlineMs: DEADLINE_MS };
// The watchdog's own wait, plus room for a busy machine to notice and for a worker to stop.
const WITHIN_MS = DEADLINE_MS + WATCHDOG_MARGIN_MS + 3000;

const HOOKS = `
calls = 0
function initial_state(ctx) if ctx.start_from == "stuck" then ${STUCK} end return { since = ctx.now } end
function cycle_request(state) if state.stuck then ${STUCK} end calls = calls + 1 return "/api/v1/logs?n=" .. calls end
function after_page(state, page) if page.count == 13 then ${STUCK} end return state, nil end
function transform(e) if e.stuck then ${STUCK} end return e end
`;

const PAGE = { status: 200, url: '/', headers: {}, links: {}, count: 0, first: null, last: null };
const open: CollectionLogic[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});

async function scriptFile(source: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'oktail-watchdog-'));
  const path = join(dir, 'my.lua');
  await writeFile(path, source);
  return path;
}

async function load(source = HOOKS, clock?: () => number): Promise<{ logic: CollectionLogic; path: string }> {
  const path = await scriptFile(source);
  const logic = await loadCollectionScript({ path, limits, clock });
  open.push(logic);
  return { logic, path };
}

/** Runs `work`, counting how often a 10 ms interval fires meanwhile: a blocked event loop counts none. */
async function timed(work: () => Promise<unknown>): Promise<{ err: unknown; ms: number; ticks: number }> {
  let ticks = 0;
  const interval = setInterval(() => ticks++, 10);
  const start = performance.now();
  try {
    const err = await work().then(
      () => null,
      (e: unknown) => e,
    );
    return { err, ms: performance.now() - start, ticks };
  } finally {
    clearInterval(interval);
  }
}

function expectStuck(err: unknown, path: string, hook: string, deadlineMs = DEADLINE_MS): void {
  expect(err).toBeInstanceOf(ScriptFailure);
  expect(err).toMatchObject({ code: 'SCRIPT_ERROR', retryable: true, hook, kind: 'deadline' });
  expect((err as Error).message).toBe(
    `${path}: ${hook} exceeded its deadline (${deadlineMs} ms); a library call could not be interrupted, so the script's engine was restarted`,
  );
}

describe('watchdog: a library call the limits cannot interrupt', () => {
  it.each([
    ['initial_state', (l: CollectionLogic) => l.initialState({ startFrom: 'stuck', now: 'n' })],
    ['cycle_request', (l: CollectionLogic) => l.cycleRequest({ stuck: true })],
    ['after_page', (l: CollectionLogic) => l.afterPage({}, { ...PAGE, count: 13 })],
  ])(
    'fails %s in time, keeps the event loop running, and the next call gets a fresh engine',
    async (hook, call) => {
      const { logic, path } = await load();
      // The script's globals: calls counts cycle_request calls until its engine is replaced.
      expect(await logic.cycleRequest({})).toBe('/api/v1/logs?n=1');
      expect(await logic.cycleRequest({})).toBe('/api/v1/logs?n=2');

      const { err, ms, ticks } = await timed(() => call(logic));
      expectStuck(err, path, hook);
      expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS + WATCHDOG_MARGIN_MS - 20);
      expect(ms).toBeLessThan(WITHIN_MS);
      // About 100 ticks in the watchdog's second; a blocked loop would count none.
      expect(ticks).toBeGreaterThan(20);

      expect(await logic.cycleRequest({})).toBe('/api/v1/logs?n=1');
      expect(await logic.afterPage({ a: 1 }, PAGE)).toEqual({ state: { a: 1 }, next: null });
    },
  );

  it('fails a page transform after the page deadline plus the margin, then transforms the next page', async () => {
    const { logic, path } = await load();
    const page: JsonObject[] = [{ uuid: 'a' }, { uuid: 'b', stuck: true }];
    // A page transform's deadline grows by 5 ms per event.
    const deadline = DEADLINE_MS + 2 * 5;
    const { err, ms, ticks } = await timed(() => logic.transform!(page));
    expectStuck(err, path, 'transform', deadline);
    expect(ms).toBeLessThan(deadline + WITHIN_MS);
    expect(ticks).toBeGreaterThan(20);
    expect(await logic.transform!([{ uuid: 'c' }, { uuid: 'd', n: null }])).toEqual([
      { uuid: 'c' },
      { uuid: 'd', n: null },
    ]);
  });

  it('fails a top-level chunk stuck at load time as a load error that is not retried', async () => {
    const path = await scriptFile(`${HOOKS}\n${STUCK}\n`);
    const { err, ms, ticks } = await timed(() => loadCollectionScript({ path, limits }));
    expect(err).toBeInstanceOf(ScriptFailure);
    expect(err).toMatchObject({ code: 'SCRIPT_ERROR', retryable: false, hook: 'top-level code' });
    expect((err as Error).message).toBe(
      `${path}: top-level code exceeded its deadline (${DEADLINE_MS} ms); a library call could not be interrupted, so the script's engine was stopped`,
    );
    expect(ms).toBeLessThan(WITHIN_MS + 2000);
    expect(ticks).toBeGreaterThan(20);
  });

  it('retries a restart whose top-level chunk gets stuck, since the same file loaded before', async () => {
    let time = Date.parse('2025-06-01T00:00:00.000Z');
    // The top-level chunk gets stuck from 2025-06-02 on: only the restart after the first failure sees it.
    const { logic, path } = await load(`${HOOKS}\nif now() >= "2025-06-02" then ${STUCK} end\n`, () => time);
    expectStuck(
      await logic.afterPage({}, { ...PAGE, count: 13 }).catch((e: unknown) => e),
      path,
      'after_page',
    );
    time = Date.parse('2025-06-02T00:00:00.000Z');
    const err: unknown = await logic.cycleRequest({}).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SCRIPT_ERROR', retryable: true, hook: 'top-level code' });
    expect((err as Error).message).toMatch(/top-level code exceeded its deadline \(50 ms\)/);
    time = Date.parse('2025-06-01T00:00:00.000Z');
    expect(await logic.cycleRequest({})).toBe('/api/v1/logs?n=1');
  });

  it('reports a stuck top-level chunk in validate', async () => {
    const path = await scriptFile(`${HOOKS}\n${STUCK}\n`);
    expect(await checkCollectionScript(path, { limits })).toEqual([
      {
        line: null,
        message: `top-level code exceeded its deadline (${DEADLINE_MS} ms); a library call could not be interrupted, so the script's engine was stopped`,
      },
    ]);
  });

  it('delivers the log lines written before the call got stuck', async () => {
    const lines: string[] = [];
    const path = await scriptFile(
      `${HOOKS}\nfunction transform(e) log("warn", "about to " .. e.uuid) ${STUCK} end\n`,
    );
    const logic = await loadCollectionScript({
      path,
      limits,
      log: (level, message) => lines.push(`${level}: ${message}`),
    });
    open.push(logic);
    await expect(logic.transform!([{ uuid: 'x' }])).rejects.toThrow(/transform exceeded its deadline/);
    expect(lines).toEqual(['warn: about to x']);
  });
});

describe('the script worker', () => {
  it('reads a test clock once per call', async () => {
    let time = Date.parse('2025-06-01T12:00:00.000Z');
    const { logic } = await load(
      `${HOOKS}\nfunction cycle_request(state) return "/x?" .. now() end\n`,
      () => time,
    );
    expect(await logic.cycleRequest({})).toBe('/x?2025-06-01T12:00:00.000Z');
    time += 1500;
    expect(await logic.cycleRequest({})).toBe('/x?2025-06-01T12:00:01.500Z');
  });

  it('runs calls made together one after another, each under its own watchdog', async () => {
    const { logic } = await load();
    const urls = await Promise.all(Array.from({ length: 50 }, () => logic.cycleRequest({})));
    expect(urls).toEqual(Array.from({ length: 50 }, (_, i) => `/api/v1/logs?n=${i + 1}`));
  });

  it('does not keep the process alive while the script idles', async () => {
    const module = new URL('./collection-script.ts', import.meta.url).href;
    const code = `const { loadCollectionScript } = await import(${JSON.stringify(module)});
      const logic = await loadCollectionScript();
      console.log(await logic.cycleRequest({ next: "https://example.okta.com/n" }));`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', code],
      { timeout: 20_000 },
    );
    expect(stdout.trim()).toBe('https://example.okta.com/n');
  });

  it('closes once, and refuses calls afterwards', async () => {
    const { logic, path } = await load();
    await logic.close();
    await logic.close();
    await expect(logic.cycleRequest({})).rejects.toMatchObject({
      code: 'SCRIPT_ERROR',
      retryable: false,
      message: `${path}: the script has been closed`,
    });
  });
});
