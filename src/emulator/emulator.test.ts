import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OktaEmulator, type EmulatorOptions, type Fault } from './emulator.js';
import { generateEvents, recordFromEvent } from './events.js';
import { createTestPki, type TestPki } from './pki.js';

const TOKEN = 'test-token-0';
const DAY = 24 * 3600_000;

let pki: TestPki;
let agent: Agent;
const running: OktaEmulator[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  agent = new Agent({ connect: { ca: pki.caCert } });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.stop()));
});

afterAll(async () => {
  await agent.close();
});

async function startEmulator(
  options: Partial<EmulatorOptions> = {},
): Promise<{ emulator: OktaEmulator; origin: string }> {
  const emulator = new OktaEmulator({ tls: pki.server, tokens: [TOKEN, 'test-token-1'], ...options });
  running.push(emulator);
  const { origin } = await emulator.start();
  return { emulator, origin };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  links: Record<string, string>;
  json(): unknown;
}

function linksOf(header: string | string[] | undefined): Record<string, string> {
  const links: Record<string, string> = {};
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  for (const m of text.matchAll(/<([^>]*)>;\s*rel="([^"]+)"/g)) links[m[2]!] = m[1]!;
  return links;
}

async function get(
  url: string,
  options: {
    token?: string | null;
    authorization?: string;
    signal?: AbortSignal;
    method?: 'GET' | 'POST';
  } = {},
): Promise<Reply> {
  const authorization =
    options.authorization ?? (options.token === null ? undefined : `SSWS ${options.token ?? TOKEN}`);
  const res = await request(url, {
    dispatcher: agent,
    method: options.method ?? 'GET',
    headers: authorization === undefined ? {} : { authorization },
    signal: options.signal,
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    text,
    links: linksOf(res.headers.link),
    json: (): unknown => JSON.parse(text),
  };
}

function uuids(reply: Reply): string[] {
  return (reply.json() as { uuid: string }[]).map((e) => e.uuid);
}

/** Follows next links like a collector does, stopping at the first page shorter than the limit. */
async function drain(
  firstUrl: string,
  limit: number,
): Promise<{ events: string[]; pages: number; next: string }> {
  let url = firstUrl;
  const events: string[] = [];
  for (let pages = 1; ; pages++) {
    const reply = await get(url);
    expect(reply.status).toBe(200);
    const page = uuids(reply);
    events.push(...page);
    url = reply.links.next!;
    expect(url).toBeDefined();
    if (page.length < limit) return { events, pages, next: url };
  }
}

function expectOktaError(reply: Reply, status: number, code: string): void {
  expect(reply.status).toBe(status);
  expect(reply.headers['content-type']).toBe('application/json');
  const body = reply.json() as Record<string, unknown>;
  expect(body).toMatchObject({ errorCode: code, errorLink: code });
  expect(typeof body.errorSummary).toBe('string');
  expect(body.errorId).toMatch(/^oae[\w-]{22}$/);
  expect(Array.isArray(body.errorCauses)).toBe(true);
}

describe('polling requests', () => {
  it('return events in persistence order and end with a short page', async () => {
    const { emulator, origin } = await startEmulator();
    const records = emulator.appendEvents(25, { seed: 1 });
    const result = await drain(`${origin}/api/v1/logs?limit=10`, 10);
    expect(result.pages).toBe(3);
    expect(result.events).toEqual(records.map((r) => r.uuid));
    expect(emulator.allEvents().map((e) => e.uuid)).toEqual(result.events);
  });

  it('send a self link and a next link in Okta form', async () => {
    const { emulator, origin } = await startEmulator();
    emulator.appendEvents(3);
    const url = `${origin}/api/v1/logs?since=${new Date(Date.now() - 3600_000).toISOString()}&limit=2`;
    const reply = await get(url);
    expect(reply.headers.link).toHaveLength(2);
    expect(reply.links.self).toBe(url);
    expect(reply.links.next).toMatch(
      new RegExp(`^${origin.replace(/\./g, '\\.')}/api/v1/logs\\?limit=2&sortOrder=ASCENDING&after=\\d+_2$`),
    );
    expect(reply.headers['content-type']).toBe('application/json');
  });

  it('always send a next link, and on an empty page it stays where the request was', async () => {
    const { emulator, origin } = await startEmulator();
    const empty = await get(`${origin}/api/v1/logs?limit=5`);
    expect(empty.text).toBe('[]');
    expect(empty.links.next).toBeDefined();

    emulator.appendEvents(2);
    const first = await get(empty.links.next!);
    expect(uuids(first)).toHaveLength(2);

    const caughtUp = await get(first.links.next!);
    expect(caughtUp.text).toBe('[]');
    expect(caughtUp.links.next).toBe(first.links.next);
    expect(caughtUp.links.self).toBe(first.links.next);
  });

  it('return late events, appended after the cursor with an older published, on the next poll', async () => {
    const { emulator, origin } = await startEmulator();
    emulator.appendEvents(5);
    const caughtUp = await drain(`${origin}/api/v1/logs?limit=100`, 100);

    const late = emulator.appendEvents(3, { publishedStart: Date.now() - 3600_000 });
    const reply = await get(caughtUp.next);
    expect(uuids(reply)).toEqual(late.map((r) => r.uuid));
    const published = (reply.json() as { published: string }[]).map((e) => e.published);
    expect(Date.parse(published[0]!)).toBeLessThan(Date.now() - 3000_000);
  });

  it('keep out-of-order published times in persistence order', async () => {
    const { emulator, origin } = await startEmulator();
    const records = emulator.appendEvents(200, { seed: 9, outOfOrder: 0.2 });
    const reply = await get(`${origin}/api/v1/logs?limit=1000`);
    expect(uuids(reply)).toEqual(records.map((r) => r.uuid));
  });

  it('return every same-millisecond event exactly once across page boundaries', async () => {
    const { emulator, origin } = await startEmulator();
    const records = emulator.appendEvents(30, { sameMillisecondGroups: 10 });
    const result = await drain(`${origin}/api/v1/logs?limit=7`, 7);
    expect(result.events).toEqual(records.map((r) => r.uuid));
    expect(new Set(result.events).size).toBe(30);
  });

  it('select by persistence time, defaulting since to seven days before server-now', async () => {
    const { emulator, origin } = await startEmulator();
    const old = emulator.appendEvents(2, {
      persistedAt: Date.now() - 8 * DAY,
      publishedStart: Date.now() - 8 * DAY,
    });
    const recent = emulator.appendEvents(2);
    expect(uuids(await get(`${origin}/api/v1/logs`))).toEqual(recent.map((r) => r.uuid));
    const since = new Date(Date.now() - 9 * DAY).toISOString();
    expect(uuids(await get(`${origin}/api/v1/logs?since=${since}`))).toEqual(
      [...old, ...recent].map((r) => r.uuid),
    );
  });

  it('serve stored bytes exactly, tricky content included', async () => {
    const { emulator, origin } = await startEmulator();
    const records = emulator.appendEvents(8, { trickyEvery: 2 });
    const reply = await get(`${origin}/api/v1/logs`);
    expect(reply.text).toBe(`[${records.map((r) => r.raw.toString('utf8')).join(',')}]`);
    expect(reply.text).toContain('[1,2.50,null,true]');
  });

  it('keep filter and q in the next link and apply them', async () => {
    const { emulator, origin } = await startEmulator();
    emulator.appendEvents(200, { seed: 11 });
    const wanted = emulator.allEvents().filter((e) => e.eventType === 'user.session.start');
    const filter = encodeURIComponent('eventType eq "user.session.start"');
    const reply = await get(`${origin}/api/v1/logs?limit=5&filter=${filter}`);
    expect(uuids(reply)).toEqual(wanted.slice(0, 5).map((e) => e.uuid));
    expect(reply.links.next).toContain(`&filter=${filter}&after=`);
    expect(uuids(await get(reply.links.next!))).toEqual(wanted.slice(5, 10).map((e) => e.uuid));

    const q = await get(`${origin}/api/v1/logs?q=${encodeURIComponent('Zoë')}`);
    expect(uuids(q).length).toBeGreaterThan(0);
    expect(q.links.next).toContain('&q=Zo%C3%AB&after=');
    const bad = await get(`${origin}/api/v1/logs?filter=${encodeURIComponent('published gt "2025"')}`);
    expectOktaError(bad, 400, 'E0000001');
  });

  it('can send self and next on one Link line', async () => {
    const { origin } = await startEmulator({ linkHeader: 'combined' });
    const reply = await get(`${origin}/api/v1/logs`);
    expect(typeof reply.headers.link).toBe('string');
    expect(Object.keys(reply.links)).toEqual(['self', 'next']);
  });
});

describe('bounded requests', () => {
  const T = Date.UTC(2026, 0, 15, 8, 0, 0);

  async function boundedSetup(): Promise<{ emulator: OktaEmulator; origin: string; url: string }> {
    const { emulator, origin } = await startEmulator({ clockSkewMs: T + DAY - Date.now() });
    emulator.appendEvents(20, { publishedStart: T, stepMs: 1000, seed: 5 });
    // A late event: persisted last, published inside the window.
    emulator.append([recordFromEvent({ uuid: 'late-1', published: new Date(T + 9500).toISOString() })]);
    const since = new Date(T + 5000).toISOString();
    const until = new Date(T + 15000).toISOString();
    return { emulator, origin, url: `${origin}/api/v1/logs?since=${since}&until=${until}` };
  }

  it('filter on published in [since, until), sorted by published, next link only while events remain', async () => {
    const { emulator, url } = await boundedSetup();
    const expected = emulator
      .allEvents()
      .filter((e) => e.publishedMs >= T + 5000 && e.publishedMs < T + 15000)
      .sort((a, b) => a.publishedMs - b.publishedMs)
      .map((e) => e.uuid);
    expect(expected).toHaveLength(11);
    expect(expected[5]).toBe('late-1');

    const pages: string[][] = [];
    let next: string | undefined = `${url}&limit=4`;
    while (next !== undefined) {
      const reply = await get(next);
      expect(reply.status).toBe(200);
      pages.push(uuids(reply));
      next = reply.links.next;
      if (next !== undefined) expect(next).toContain('until=');
    }
    expect(pages.map((p) => p.length)).toEqual([4, 4, 3]);
    expect(pages.flat()).toEqual(expected);
  });

  it('page newest first with DESCENDING', async () => {
    const { emulator, url } = await boundedSetup();
    const expected = emulator
      .allEvents()
      .filter((e) => e.publishedMs >= T + 5000 && e.publishedMs < T + 15000)
      .sort((a, b) => b.publishedMs - a.publishedMs)
      .map((e) => e.uuid);
    const first = await get(`${url}&limit=6&sortOrder=DESCENDING`);
    const second = await get(first.links.next!);
    expect([...uuids(first), ...uuids(second)]).toEqual(expected);
    expect(second.links.next).toBeUndefined();
  });

  it('end without a next link when everything fits', async () => {
    const { url } = await boundedSetup();
    const reply = await get(url);
    expect(uuids(reply)).toHaveLength(11);
    expect(reply.links.next).toBeUndefined();
    expect(reply.links.self).toBe(url);
  });
});

describe('request validation', () => {
  const cases: [string, (origin: string) => string, string][] = [
    ['limit above the maximum', () => 'limit=1001', 'E0000001'],
    ['negative limit', () => 'limit=-1', 'E0000001'],
    ['non-numeric limit', () => 'limit=ten', 'E0000001'],
    ['unparseable since', () => 'since=yesterday', 'E0000030'],
    ['impossible calendar date', () => 'since=2026-09-31T00:00:00.000Z', 'E0000030'],
    ['unparseable until', () => `since=${new Date().toISOString()}&until=2026-01-01`, 'E0000030'],
    [
      'since more than 180 days ago',
      () => `since=${new Date(Date.now() - 181 * DAY).toISOString()}`,
      'E0000053',
    ],
    ['after together with since', () => `since=${new Date().toISOString()}&after=1_1`, 'E0000001'],
    ['unknown sortOrder', () => 'sortOrder=SIDEWAYS', 'E0000001'],
    ['unparseable cursor', () => 'after=not-a-cursor', 'E0000029'],
    ['cursor the server never issued', () => `after=${Date.now()}_1`, 'E0000029'],
    ['more than 10 keywords', () => `q=${'a '.repeat(11)}`, 'E0000001'],
  ];

  it.each(cases)('rejects %s', async (_name, query, code) => {
    const { emulator, origin } = await startEmulator();
    emulator.appendEvents(2);
    const status = code === 'E0000029' || code === 'E0000030' || code === 'E0000053' ? 400 : 400;
    expectOktaError(await get(`${origin}/api/v1/logs?${query(origin)}`), status, code);
  });

  it('accepts limit 0..maxLimit and offsets in dates', async () => {
    const { emulator, origin } = await startEmulator({ maxLimit: 5 });
    emulator.appendEvents(3);
    expectOktaError(await get(`${origin}/api/v1/logs?limit=6`), 400, 'E0000001');
    expect((await get(`${origin}/api/v1/logs?limit=0`)).text).toBe('[]');
    const since = encodeURIComponent(new Date(Date.now() - 3600_000).toISOString().replace('Z', '+00:00'));
    expect(uuids(await get(`${origin}/api/v1/logs?limit=5&since=${since}`))).toHaveLength(3);
  });

  it('rejects a polling cursor in a bounded request', async () => {
    const { emulator, origin } = await startEmulator();
    emulator.appendEvents(2);
    const next = (await get(`${origin}/api/v1/logs?limit=1`)).links.next!;
    expectOktaError(await get(`${next}&until=${new Date().toISOString()}`), 400, 'E0000029');
  });

  it('answers unknown paths and methods with Okta errors', async () => {
    const { origin } = await startEmulator();
    expectOktaError(await get(`${origin}/api/v1/users`), 404, 'E0000007');
    expectOktaError(await get(`${origin}/api/v1/logs`, { method: 'POST' }), 405, 'E0000022');
  });
});

describe('authentication', () => {
  it.each([
    ['no Authorization header', { token: null }],
    ['an unknown token', { token: 'wrong' }],
    ['another scheme', { authorization: `Bearer ${TOKEN}` }],
  ])('rejects %s with E0000011', async (_name, options) => {
    const { emulator, origin } = await startEmulator();
    const reply = await get(`${origin}/api/v1/logs`, options);
    expectOktaError(reply, 401, 'E0000011');
    expect(reply.json()).toMatchObject({ errorSummary: 'Invalid token provided', errorCauses: [] });
    expect(emulator.requests[0]!.tokenIndex).toBeNull();
  });

  it('records which token was used, never the token itself', async () => {
    const { emulator, origin } = await startEmulator();
    await get(`${origin}/api/v1/logs`, { token: 'test-token-1' });
    await get(`${origin}/api/v1/logs`, { token: 'nope' });
    expect(emulator.requests.map((r) => r.tokenIndex)).toEqual([1, null]);
    expect(JSON.stringify(emulator.requests)).not.toContain('test-token');
    expect(JSON.stringify(emulator.stats())).not.toContain('test-token');
  });

  it('accepts a token set later and refuses the replaced one', async () => {
    const { emulator, origin } = await startEmulator();
    emulator.setTokens(['rotated']);
    expect((await get(`${origin}/api/v1/logs`, { token: 'rotated' })).status).toBe(200);
    expect((await get(`${origin}/api/v1/logs`)).status).toBe(401);
  });
});

describe('rate limits', () => {
  function rate(reply: Reply): { limit: number; remaining: number; reset: number; date: number } {
    return {
      limit: Number(reply.headers['x-rate-limit-limit']),
      remaining: Number(reply.headers['x-rate-limit-remaining']),
      reset: Number(reply.headers['x-rate-limit-reset']),
      date: Date.parse(String(reply.headers.date)),
    };
  }

  it('count down one org bucket shared by all tokens, then answer 429 E0000047', async () => {
    const { emulator, origin } = await startEmulator({ rateLimit: { limit: 3 } });
    const a = rate(await get(`${origin}/api/v1/logs`));
    const b = rate(await get(`${origin}/api/v1/logs`, { token: 'test-token-1' }));
    const c = rate(await get(`${origin}/api/v1/logs`));
    const limited = await get(`${origin}/api/v1/logs`);
    expect([a.remaining, b.remaining, c.remaining]).toEqual([2, 1, 0]);
    expect(a.limit).toBe(3);
    expectOktaError(limited, 429, 'E0000047');
    expect(rate(limited)).toMatchObject({ limit: 3, remaining: 0, reset: a.reset });
    expect(emulator.stats().rateLimited).toBe(1);
  });

  it('report the end of the current fixed window as Reset in epoch seconds', async () => {
    const { origin } = await startEmulator({ rateLimit: { limit: 10, windowMs: 60_000 } });
    const r = rate(await get(`${origin}/api/v1/logs`));
    expect(r.reset % 60).toBe(0);
    expect(r.reset * 1000 - r.date).toBeGreaterThan(0);
    expect(r.reset * 1000 - r.date).toBeLessThanOrEqual(61_000);
  });

  it('refill when the window resets', async () => {
    const { origin } = await startEmulator({ rateLimit: { limit: 2, windowMs: 500 } });
    let limited: Reply | undefined;
    for (let i = 0; i < 10 && limited === undefined; i++) {
      const reply = await get(`${origin}/api/v1/logs`);
      if (reply.status === 429) limited = reply;
    }
    expect(limited).toBeDefined();
    const resetMs = rate(limited!).reset * 1000;
    await new Promise((r) => setTimeout(r, Math.max(0, resetMs - Date.now()) + 20));
    const refilled = await get(`${origin}/api/v1/logs`);
    expect(refilled.status).toBe(200);
    expect(rate(refilled).remaining).toBe(1);
    expect(rate(refilled).reset).toBeGreaterThan(rate(limited!).reset - 1);
  });

  it('let a test drain the bucket as another client would', async () => {
    const { emulator, origin } = await startEmulator({ rateLimit: { limit: 50 } });
    emulator.consume(45);
    expect(rate(await get(`${origin}/api/v1/logs`)).remaining).toBe(4);
    emulator.consume(10);
    expect((await get(`${origin}/api/v1/logs`)).status).toBe(429);
  });

  it('let a test have another client spend at an exact pace, charged to the window each request falls in', async () => {
    const { emulator, origin } = await startEmulator({ rateLimit: { limit: 50, windowMs: 10_000 } });
    // The emulator's clock is moved by hand, so what is due does not depend on how fast this runs: each
    // step leaves 400 ms before the next request is due.
    const start = (Math.floor(Date.now() / 10_000) + 1) * 10_000;
    const at = (ms: number) => emulator.setClockSkew(start + ms - Date.now());
    at(100);
    const other = emulator.spendSteadily(1000);
    at(3100);
    expect(rate(await get(`${origin}/api/v1/logs`)).remaining).toBe(50 - 3 - 1);
    at(11_100);
    expect(rate(await get(`${origin}/api/v1/logs`)).remaining).toBe(50 - 1 - 1);
    const window = start / 10_000;
    expect([...other.perWindow]).toEqual([
      [window, 10],
      [window + 1, 1],
    ]);
    other.stop();
    at(15_100);
    expect(rate(await get(`${origin}/api/v1/logs`)).remaining).toBe(50 - 1 - 2);
    expect(other.perWindow.get(window + 1)).toBe(1);
  });

  it('send a large limit and never 429 when unlimited', async () => {
    const { origin } = await startEmulator({ rateLimit: null });
    const r = rate(await get(`${origin}/api/v1/logs`));
    expect(r.limit).toBeGreaterThanOrEqual(1_000_000);
    expect(r.remaining).toBe(r.limit - 1);
  });

  it('carry rate headers and Date on errors too', async () => {
    const { origin } = await startEmulator({ rateLimit: { limit: 5 } });
    for (const reply of [
      await get(`${origin}/api/v1/logs`, { token: null }),
      await get(`${origin}/api/v1/logs?limit=x`),
      await get(`${origin}/nowhere`),
    ]) {
      expect(reply.headers['x-rate-limit-limit']).toBe('5');
      expect(reply.headers['x-rate-limit-remaining']).toBeDefined();
      expect(reply.headers['x-rate-limit-reset']).toMatch(/^\d+$/);
      expect(reply.headers.date).toBeDefined();
    }
  });

  it('show a skewed server clock consistently in Date and Reset', async () => {
    const skew = -(3 * 3600_000 + 17_000);
    const { emulator, origin } = await startEmulator({ clockSkewMs: skew, rateLimit: { limit: 10 } });
    const r = rate(await get(`${origin}/api/v1/logs`));
    expect(Math.abs(r.date - (Date.now() + skew))).toBeLessThan(2000);
    expect(r.reset * 1000 - r.date).toBeGreaterThan(0);
    expect(r.reset * 1000 - r.date).toBeLessThanOrEqual(61_000);
    expect(Math.abs(emulator.now() - (Date.now() + skew))).toBeLessThan(50);
    // Persistence times follow the server clock as well.
    emulator.appendEvents(1);
    expect(Math.abs(emulator.allEvents()[0]!.persistedAt - emulator.now())).toBeLessThan(1000);
  });

  it('answer 429 with limit 0 when too many requests are in flight', async () => {
    const { emulator, origin } = await startEmulator({
      concurrencyLimit: 2,
      latencyMs: 800,
      rateLimit: { limit: 100 },
    });
    const replies = await Promise.all([1, 2, 3, 4].map(() => get(`${origin}/api/v1/logs`)));
    emulator.setLatency(0);
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 429, 429]);
    for (const reply of replies.filter((r) => r.status === 429)) {
      expectOktaError(reply, 429, 'E0000047');
      expect(reply.headers['x-rate-limit-limit']).toBe('0');
    }
    expect(emulator.stats().concurrencyLimited).toBe(2);
    // Concurrency rejections do not spend the bucket.
    expect(rate(await get(`${origin}/api/v1/logs`)).remaining).toBe(97);
  });
});

describe('fault injection', () => {
  async function faulted(fault: Fault): Promise<{ emulator: OktaEmulator; origin: string; url: string }> {
    const { emulator, origin } = await startEmulator();
    emulator.appendEvents(6, { seed: 21 });
    emulator.injectFaults([fault]);
    return { emulator, origin, url: `${origin}/api/v1/logs?limit=4` };
  }

  /** A failed request must leave the next one where it would have been. */
  async function expectUnchanged(emulator: OktaEmulator, url: string): Promise<void> {
    const reply = await get(url);
    expect(uuids(reply)).toEqual(
      emulator
        .allEvents()
        .slice(0, 4)
        .map((e) => e.uuid),
    );
  }

  it('answers a status fault with an Okta error body', async () => {
    const { emulator, url } = await faulted({ kind: 'status', status: 500 });
    expectOktaError(await get(url), 500, 'E0000009');
    expect(emulator.requests[0]).toMatchObject({ status: 500, fault: 'status' });
    await expectUnchanged(emulator, url);
  });

  it('uses a given error code', async () => {
    const { url } = await faulted({ kind: 'status', status: 403, errorCode: 'E0000006' });
    expectOktaError(await get(url), 403, 'E0000006');
  });

  it('makes an injected 429 look like an exhausted bucket', async () => {
    const { emulator, origin } = await startEmulator({ rateLimit: { limit: 20 } });
    emulator.injectFaults([{ kind: 'status', status: 429 }]);
    const reply = await get(`${origin}/api/v1/logs`);
    expectOktaError(reply, 429, 'E0000047');
    expect(reply.headers['x-rate-limit-remaining']).toBe('0');
    expect(reply.headers['x-rate-limit-limit']).toBe('20');
    const after = await get(`${origin}/api/v1/logs`);
    expect(after.headers['x-rate-limit-reset']).toBe(reply.headers['x-rate-limit-reset']);
  });

  it('drops the connection without a response on reset', async () => {
    const { emulator, url } = await faulted({ kind: 'reset' });
    await expect(get(url)).rejects.toThrow();
    expect(emulator.requests[0]).toMatchObject({ status: null, fault: 'reset' });
    await expectUnchanged(emulator, url);
  });

  it('closes mid-body after announcing the full length on truncate-close', async () => {
    const { emulator, url } = await faulted({ kind: 'truncate-close' });
    await expect(get(url)).rejects.toThrow();
    await expectUnchanged(emulator, url);
  });

  it('sends a complete response whose JSON stops inside an event on truncate-json', async () => {
    const { emulator, url } = await faulted({ kind: 'truncate-json' });
    const reply = await get(url);
    expect(reply.status).toBe(200);
    expect(Number(reply.headers['content-length'])).toBe(Buffer.byteLength(reply.text));
    expect(reply.text.startsWith('[{')).toBe(true);
    expect(() => void reply.json()).toThrow();
    await expectUnchanged(emulator, url);
  });

  it('sends an HTML page on not-json', async () => {
    const { emulator, url } = await faulted({ kind: 'not-json' });
    const reply = await get(url);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^text\/html/);
    expect(reply.text).toMatch(/^<!DOCTYPE html>/);
    await expectUnchanged(emulator, url);
  });

  it('sends a JSON object on not-array', async () => {
    const { emulator, url } = await faulted({ kind: 'not-array' });
    const reply = await get(url);
    expect(reply.status).toBe(200);
    expect(Array.isArray(reply.json())).toBe(false);
    expect(typeof reply.json()).toBe('object');
    await expectUnchanged(emulator, url);
  });

  it('answers late on delay, so client timeouts can fire', async () => {
    const { emulator, url } = await faulted({ kind: 'delay', ms: 400 });
    await expect(get(url, { signal: AbortSignal.timeout(100) })).rejects.toThrow(/timeout|abort/i);
    emulator.injectFaults([{ kind: 'delay', ms: 150 }]);
    const slow = Date.now();
    expect(uuids(await get(url))).toHaveLength(4);
    expect(Date.now() - slow).toBeGreaterThanOrEqual(140);
  });

  it('points the next link at another origin on foreign-next', async () => {
    const { emulator, url } = await faulted({ kind: 'foreign-next', origin: 'https://evil.example' });
    const reply = await get(url);
    expect(uuids(reply)).toHaveLength(4);
    expect(reply.links.next).toMatch(
      /^https:\/\/evil\.example\/api\/v1\/logs\?limit=4&sortOrder=ASCENDING&after=/,
    );
    expect(emulator.stats().eventsServed).toBe(4);
  });

  it('sends an empty page whose next link does not skip anything on empty-page', async () => {
    const { emulator, url } = await faulted({ kind: 'empty-page' });
    const reply = await get(url);
    expect(reply.text).toBe('[]');
    await expectUnchanged(emulator, reply.links.next!);
  });

  it('applies queued faults one per request, in order', async () => {
    const { emulator, url } = await faulted({ kind: 'status', status: 503 });
    emulator.injectFaults([{ kind: 'not-json' }]);
    expect(emulator.pendingFaults).toBe(2);
    expect((await get(url)).status).toBe(503);
    expect((await get(url)).headers['content-type']).toMatch(/html/);
    expect(uuids(await get(url))).toHaveLength(4);
    expect(emulator.stats().faultsApplied).toBe(2);
  });

  it('draws random faults reproducibly from a seed', async () => {
    const { emulator, origin } = await startEmulator();
    const run = async (): Promise<number[]> => {
      emulator.randomFaults({ probability: 0.5, kinds: [{ kind: 'status', status: 502 }], seed: 42 });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await get(`${origin}/api/v1/logs`)).status);
      return statuses;
    };
    const first = await run();
    expect(first).toContain(502);
    expect(first).toContain(200);
    expect(await run()).toEqual(first);
    emulator.randomFaults(null);
    expect((await get(`${origin}/api/v1/logs`)).status).toBe(200);
  });
});

describe('holding requests', () => {
  it('answers the nth request and the ones after it only when the test releases them', async () => {
    const { emulator, origin } = await startEmulator();
    emulator.appendEvents(3);
    const hold = emulator.holdFrom(2, 2);
    expect((await get(`${origin}/api/v1/logs`)).status).toBe(200);
    let answered = 0;
    const second = get(`${origin}/api/v1/logs`).then((r) => (answered++, r));
    await hold.arrived(1);
    expect(hold.held()).toBe(1);
    expect(answered).toBe(0);
    hold.releaseOne();
    expect((await second).status).toBe(200);
    const third = get(`${origin}/api/v1/logs`);
    await hold.arrived(2);
    hold.end();
    expect((await third).status).toBe(200);
    // Past the count: answered at once.
    expect((await get(`${origin}/api/v1/logs`)).status).toBe(200);
    expect(hold.held()).toBe(2);
  });

  it('answers a status fault with the errorCauses given', async () => {
    const { emulator, origin } = await startEmulator();
    emulator.injectFaults([{ kind: 'status', status: 400, errorCauses: ['since: bad', 'limit: too big'] }]);
    const reply = await get(`${origin}/api/v1/logs`);
    expect(reply.status).toBe(400);
    expect(reply.json()).toMatchObject({
      errorCode: 'E0000001',
      errorCauses: [{ errorSummary: 'since: bad' }, { errorSummary: 'limit: too big' }],
    });
  });
});

describe('lifecycle and observability', () => {
  it('stops twice without complaint and closes keep-alive connections', async () => {
    const { emulator, origin } = await startEmulator();
    expect((await get(`${origin}/api/v1/logs`)).status).toBe(200);
    const started = Date.now();
    await emulator.stop();
    await emulator.stop();
    // Not after the idle connection's keep-alive timeout (65 s): closed, not waited for.
    expect(Date.now() - started).toBeLessThan(65_000);
    await expect(get(`${origin}/api/v1/logs`)).rejects.toThrow();
  }, 70_000);

  it('stops while a response is still delayed', async () => {
    const { emulator, origin } = await startEmulator();
    emulator.injectFaults([{ kind: 'delay', ms: 10_000 }]);
    const pending = get(`${origin}/api/v1/logs`);
    while (emulator.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    await emulator.stop();
    await expect(pending).rejects.toThrow();
  });

  it('logs requests and counts statuses and served events', async () => {
    const { emulator, origin } = await startEmulator();
    emulator.appendEvents(3);
    await get(`${origin}/api/v1/logs?limit=2`);
    await get(`${origin}/api/v1/logs?limit=x`);
    expect(emulator.requests.map((r) => [r.path, r.query, r.status, r.events])).toEqual([
      ['/api/v1/logs', { limit: '2' }, 200, 2],
      ['/api/v1/logs', { limit: 'x' }, 400, 0],
    ]);
    expect(emulator.stats()).toMatchObject({ requests: 2, byStatus: { 200: 1, 400: 1 }, eventsServed: 2 });
    emulator.resetStats();
    expect(emulator.requests).toHaveLength(0);
    expect(emulator.stats().requests).toBe(0);
    expect(emulator.eventCount).toBe(3);
  });

  it('numbers events in persistence order and refuses persistence times that go back', () => {
    const emulator = new OktaEmulator({ tls: pki.server, tokens: [] });
    emulator.append(generateEvents(2), { persistedAt: 1_000 });
    emulator.append(generateEvents(1), { persistedAt: 2_000 });
    expect(emulator.allEvents().map((e) => [e.seq, e.persistedAt])).toEqual([
      [1, 1_000],
      [2, 1_000],
      [3, 2_000],
    ]);
    expect(() => emulator.append(generateEvents(1), { persistedAt: 1_500 })).toThrow(RangeError);
  });

  it('refuses to listen anywhere but loopback', () => {
    expect(() => new OktaEmulator({ tls: pki.server, tokens: [], host: '0.0.0.0' as 'localhost' })).toThrow(
      /loopback/,
    );
  });
});
