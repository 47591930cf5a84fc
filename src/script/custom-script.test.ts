import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import type { CollectionLogic } from '../core/collection-logic.js';
import type { JsonObject } from '../core/json.js';
import { builtinScriptSource, loadCollectionScript } from './collection-script.js';

const EVENT = JSON.parse(
  readFileSync(new URL('./testdata/system-log-event.json', import.meta.url), 'utf8'),
) as JsonObject;

/** The worked examples are tested as printed in the documentation. */
function docExample(name: string): string {
  const doc = readFileSync(new URL('../../docs/scripting.md', import.meta.url), 'utf8');
  const match = new RegExp(`<!-- example: ${name} -->\\s*\`\`\`lua\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (match === null) throw new Error(`docs/scripting.md has no example ${name}`);
  return match[1]!;
}

/** A copy of the built-in script with `extra` appended, as the documentation tells users to do. */
async function customScript(
  extra: string,
  log?: (level: string, message: string) => void,
): Promise<CollectionLogic> {
  const dir = await mkdtemp(join(tmpdir(), 'oktail-custom-'));
  const path = join(dir, 'my-okta.lua');
  await writeFile(path, `${await builtinScriptSource()}\n${extra}`);
  return loadCollectionScript({ path, log });
}

function event(overrides: JsonObject): JsonObject {
  return { ...structuredClone<JsonObject>(EVENT), ...overrides };
}

describe('custom scripts', () => {
  it('example 1 keeps only the listed event types', async () => {
    const logic = await customScript(docExample('keep-event-types'));
    try {
      const events = [
        event({ uuid: '1', eventType: 'user.session.start' }),
        event({ uuid: '2', eventType: 'policy.evaluate_sign_on' }),
        event({ uuid: '3', eventType: 'user.account.lock' }),
        event({ uuid: '4', eventType: 'user.session.end' }),
      ];
      const out = await logic.transform!(events);
      expect(out.map((e) => e?.uuid ?? null)).toEqual(['1', null, '3', null]);
      expect(out[0]).toEqual(events[0]);
    } finally {
      await logic.close();
    }
  });

  it('example 2 adds the actor email domain and leaves events without one alone', async () => {
    const logic = await customScript(docExample('actor-domain'));
    try {
      const withNullActor = event({ uuid: '2', actor: null });
      const withoutLogin = event({ uuid: '3', actor: { id: 'x', type: 'PublicClientApp' } });
      const out = await logic.transform!([
        event({ uuid: '1', actor: { ...(EVENT.actor as JsonObject), alternateId: 'Jane.Doe@Example.COM' } }),
        withNullActor,
        withoutLogin,
      ]);
      expect(out[0]?.actor_domain).toBe('example.com');
      expect(Object.keys(out[0]!).at(-1)).toBe('actor_domain');
      expect(out[1]).toEqual(withNullActor);
      expect(out[2]).toEqual(withoutLogin);
    } finally {
      await logic.close();
    }
  });

  it('keeps the built-in decisions and tags when a transform is added', async () => {
    const logic = await customScript(docExample('actor-domain'));
    try {
      expect(logic.tags).toEqual({ _okta_event_type: 'systemLog' });
      expect(await logic.cycleRequest({ next: 'https://example.okta.com/next' })).toBe(
        'https://example.okta.com/next',
      );
    } finally {
      await logic.close();
    }
  });

  it('can change the request and keep its own fields in the state', async () => {
    const logic = await customScript(`
      local builtin_after_page = after_page
      function cycle_request(state)
        if state.next then return state.next end
        return "/api/v1/logs?since=" .. url_encode(state.since) .. "&sortOrder=ASCENDING&limit=200&filter="
          .. url_encode('eventType eq "user.session.start"')
      end
      function after_page(state, page)
        local new_state, next_url = builtin_after_page(state, page)
        new_state.pages = (state.pages or 0) + 1
        return new_state, next_url
      end
    `);
    try {
      expect(await logic.cycleRequest({ since: '2025-06-01T12:00:00.000Z' })).toBe(
        '/api/v1/logs?since=2025-06-01T12%3A00%3A00.000Z&sortOrder=ASCENDING&limit=200&filter=eventType%20eq%20%22user.session.start%22',
      );
      const page = {
        status: 200,
        url: '/x',
        headers: {},
        links: { next: 'https://example.okta.com/n' },
        count: 3,
        first: null,
        last: null,
      };
      const first = await logic.afterPage({ since: 's' }, page);
      const second = await logic.afterPage(first.state, page);
      expect(second.state).toEqual({ next: 'https://example.okta.com/n', since: 's', pages: 2 });
    } finally {
      await logic.close();
    }
  });

  it('reports a failing transform as a retryable SCRIPT_ERROR naming the event and the line', async () => {
    const logic = await customScript(`function transform(e)\n  return { bad = print }\nend`);
    try {
      await expect(logic.transform!([event({ uuid: '1' })])).rejects.toMatchObject({
        code: 'SCRIPT_ERROR',
        retryable: true,
        message: expect.stringMatching(
          /my-okta\.lua: transform failed: transform returned an event that is not JSON \(event 1 at bad\): a function value is not JSON$/,
        ),
      });
      const again = await logic.transform!([event({ uuid: '2' })]).catch((e: unknown) => e);
      expect(again).toBeInstanceOf(Error);
    } finally {
      await logic.close();
    }
  });

  it('refuses a URL that is not a string and a state that is not a table', async () => {
    const logic = await customScript(`
      function cycle_request(state) return 42 end
      function after_page(state, page) return nil, "x" end
    `);
    try {
      await expect(logic.cycleRequest({})).rejects.toThrow(
        /cycle_request must return a URL string \(got number 42\)$/,
      );
      await expect(
        logic.afterPage(
          {},
          { status: 200, url: '/', headers: {}, links: {}, count: 0, first: null, last: null },
        ),
      ).rejects.toThrow(/after_page must return the new state table first \(got nil\)$/);
    } finally {
      await logic.close();
    }
  });

  it('works with a script that makes undefined globals an error (strict mode)', async () => {
    const logic = await customScript(`
      setmetatable(_G, {
        __index = function(_, name) error("undefined global " .. tostring(name), 2) end,
        __newindex = function(_, name) error("assignment to undefined global " .. tostring(name), 2) end,
      })
    `);
    try {
      expect(logic.transform).toBeUndefined();
      expect(await logic.cycleRequest({ next: 'https://example.okta.com/n' })).toBe(
        'https://example.okta.com/n',
      );
    } finally {
      await logic.close();
    }
  });

  it('forwards log lines to the callback', async () => {
    const lines: string[] = [];
    const logic = await customScript(
      `function transform(e) log("debug", "saw " .. e.uuid) return e end`,
      (l, m) => lines.push(`${l}: ${m}`),
    );
    try {
      await logic.transform!([event({ uuid: 'a' }), event({ uuid: 'b' })]);
      expect(lines).toEqual(['debug: saw a', 'debug: saw b']);
    } finally {
      await logic.close();
    }
  });

  it('fails to load without a required hook', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oktail-custom-'));
    const path = join(dir, 'broken.lua');
    await writeFile(
      path,
      'function cycle_request(state) return "/" end\nfunction initial_state(ctx) return {} end\n',
    );
    await expect(loadCollectionScript({ path })).rejects.toMatchObject({
      code: 'SCRIPT_ERROR',
      retryable: false,
      message: `${path}: missing required function after_page`,
    });
  });

  it('fails to load a file that does not exist', async () => {
    await expect(loadCollectionScript({ path: '/nonexistent/x.lua' })).rejects.toThrow(
      /^\/nonexistent\/x\.lua: cannot read the script: ENOENT/,
    );
  });
});
