import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { CollectionLogic, PageMeta } from '../core/collection-logic.js';
import type { JsonObject } from '../core/json.js';
import { BUILTIN_SCRIPT_NAME, builtinScriptSource, loadCollectionScript } from './collection-script.js';

const NOW = '2025-06-01T12:00:00.000Z';
const ORG = 'https://example.okta.com';
const NEXT = `${ORG}/api/v1/logs?limit=1000&after=1748779200000_1`;
const LATER = `${ORG}/api/v1/logs?limit=1000&after=1748779300000_1`;

function page(count: number, links: Record<string, string>, url = NEXT): PageMeta {
  const ref = (i: number) => ({
    uuid: `uuid-${i}`,
    published: `2025-06-01T11:00:${String(i % 60).padStart(2, '0')}.000Z`,
  });
  return {
    status: 200,
    url,
    headers: { 'content-type': 'application/json', 'x-rate-limit-remaining': '40' },
    links,
    count,
    first: count === 0 ? null : ref(1),
    last: count === 0 ? null : ref(count),
  };
}

let logic: CollectionLogic;

beforeAll(async () => {
  logic = await loadCollectionScript();
});

afterAll(async () => {
  await logic.close();
});

describe('built-in okta.lua', () => {
  it('is named as the built-in and tags every event as a System Log event', () => {
    expect(logic.name).toBe(BUILTIN_SCRIPT_NAME);
    expect(logic.tags).toEqual({ _okta_event_type: 'systemLog' });
  });

  it('asks for no per-event work', () => {
    expect(logic.transform).toBeUndefined();
  });

  it('ships as a real file a user can copy', async () => {
    const source = await builtinScriptSource();
    expect(source).toContain('function after_page(state, page)');
    expect(source).toContain('oktail script print okta > my-okta.lua');
  });

  describe('initial state', () => {
    it('starts from now without start_from', async () => {
      expect(await logic.initialState({ startFrom: null, now: NOW })).toEqual({ since: NOW });
    });

    it('starts from start_from, normalised to UTC with milliseconds', async () => {
      expect(await logic.initialState({ startFrom: '2025-05-20T10:00:00+02:00', now: NOW })).toEqual({
        since: '2025-05-20T08:00:00.000Z',
      });
    });

    it('clamps a start_from older than 90 days to now - 90 days', async () => {
      expect(await logic.initialState({ startFrom: '2024-01-01T00:00:00.000Z', now: NOW })).toEqual({
        since: '2025-03-03T12:00:00.000Z',
      });
    });

    it('says so when it moves start_from forward, with the effective start', async () => {
      const lines: [string, string][] = [];
      const logged = await loadCollectionScript({ log: (level, message) => lines.push([level, message]) });
      try {
        await logged.initialState({ startFrom: '2025-03-03T12:00:00.000Z', now: NOW });
        expect(lines).toEqual([]);
        await logged.initialState({ startFrom: '2024-01-01T00:00:00Z', now: NOW });
        expect(lines).toEqual([
          [
            'warn',
            'start_from 2024-01-01T00:00:00Z is older than the 90 days Okta keeps; ' +
              'starting from 2025-03-03T12:00:00.000Z instead',
          ],
        ]);
      } finally {
        await logged.close();
      }
    });

    it('keeps a start_from exactly 90 days back', async () => {
      expect(await logic.initialState({ startFrom: '2025-03-03T12:00:00.000Z', now: NOW })).toEqual({
        since: '2025-03-03T12:00:00.000Z',
      });
    });

    it('rejects an unparseable start_from with a clear message', async () => {
      await expect(logic.initialState({ startFrom: 'yesterday', now: NOW })).rejects.toThrow(
        /^okta\.lua \(built-in\): initial_state failed at line \d+: start_from: not an ISO 8601 date-time/,
      );
    });

    it('clamps only when the state is created: a stored since is never moved', async () => {
      const old = { since: '2024-01-01T00:00:00.000Z' };
      expect(await logic.cycleRequest(old)).toBe(
        '/api/v1/logs?since=2024-01-01T00%3A00%3A00.000Z&sortOrder=ASCENDING&limit=1000',
      );
    });
  });

  describe('cycle request', () => {
    it('is a polling request from since: URL-encoded, ascending, 1000 per page, no until', async () => {
      expect(await logic.cycleRequest({ since: NOW })).toBe(
        '/api/v1/logs?since=2025-06-01T12%3A00%3A00.000Z&sortOrder=ASCENDING&limit=1000',
      );
    });

    it('is the stored next link, used as is, once there is one', async () => {
      expect(await logic.cycleRequest({ next: NEXT, since: NOW })).toBe(NEXT);
    });

    it('fails on a state with neither next nor since', async () => {
      await expect(logic.cycleRequest({})).rejects.toThrow(
        'the state has neither a next link nor a since time',
      );
    });
  });

  describe('after a page', () => {
    it('follows the next link while pages are full', async () => {
      const decision = await logic.afterPage({ since: NOW }, page(1000, { next: LATER, self: NEXT }));
      expect(decision).toEqual({
        state: { next: LATER, last_uuid: 'uuid-1000', last_published: '2025-06-01T11:00:40.000Z' },
        next: LATER,
      });
    });

    it('ends the cycle on a short page, keeping the next link for the next cycle', async () => {
      const decision = await logic.afterPage({ next: NEXT }, page(999, { next: LATER, self: NEXT }));
      expect(decision.next).toBeNull();
      expect(decision.state).toEqual({
        next: LATER,
        last_uuid: 'uuid-999',
        last_published: '2025-06-01T11:00:39.000Z',
      });
    });

    it('keeps the position on an empty page (next equals self)', async () => {
      const state = { next: NEXT, last_uuid: 'uuid-7', last_published: '2025-06-01T10:00:00.000Z' };
      const decision = await logic.afterPage(state, page(0, { next: NEXT, self: NEXT }));
      expect(decision).toEqual({ state, next: null });
    });

    it('keeps since as the fallback until an event has been seen', async () => {
      const decision = await logic.afterPage({ since: NOW }, page(0, { next: NEXT, self: NEXT }));
      expect(decision).toEqual({ state: { next: NEXT, since: NOW }, next: null });
    });

    it('keeps the previous next link and since when a page has no next link at all', async () => {
      const state = { next: NEXT, last_uuid: 'uuid-1', last_published: '2025-06-01T10:00:00.000Z' };
      const decision = await logic.afterPage(state, page(1000, { self: NEXT }));
      expect(decision.next).toBeNull();
      expect(decision.state).toEqual({
        next: NEXT,
        last_uuid: 'uuid-1000',
        last_published: '2025-06-01T11:00:40.000Z',
      });

      const fresh = await logic.afterPage({ since: NOW }, page(0, {}));
      expect(fresh).toEqual({ state: { since: NOW }, next: null });
    });

    it('walks a cycle: first request, full pages, then caught up', async () => {
      let state: JsonObject = await logic.initialState({ startFrom: null, now: NOW });
      let url: string | null = await logic.cycleRequest(state);
      const pages = [
        page(1000, { next: `${ORG}/p2` }),
        page(1000, { next: `${ORG}/p3` }),
        page(3, { next: `${ORG}/p4` }),
      ];
      const requested: string[] = [];
      for (const p of pages) {
        if (url === null) break;
        requested.push(url);
        const decision = await logic.afterPage(state, { ...p, url });
        state = decision.state;
        url = decision.next;
      }
      expect(requested).toEqual([
        '/api/v1/logs?since=2025-06-01T12%3A00%3A00.000Z&sortOrder=ASCENDING&limit=1000',
        `${ORG}/p2`,
        `${ORG}/p3`,
      ]);
      expect(state.next).toBe(`${ORG}/p4`);
      expect(await logic.cycleRequest(state)).toBe(`${ORG}/p4`);
    });
  });

  it('carries next links and non-ASCII strings through Lua byte for byte', async () => {
    const state: JsonObject = {
      next: `${NEXT}&q=%C3%A9`,
      since: NOW,
      last_uuid: 'ünïcödé ✓ 🎉',
      last_published: '2025-06-01T11:00:00.000Z',
    };
    const { state: back } = await logic.afterPage(state, page(0, { next: state.next as string }));
    expect(back).toEqual({
      next: state.next,
      last_uuid: state.last_uuid,
      last_published: state.last_published,
    });
  });
});
