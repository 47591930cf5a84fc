import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { EventEdit, type RawEvents, type TransformedEvents } from '../core/collection-logic.js';
import { scanPage, SpanFlag } from '../sources/okta/page-body.js';
import { DEFAULT_LIMITS, ScriptSandbox } from './sandbox.js';

/** A page as Okta would send it, bytes kept exactly (`2.50`, `\u00e9`, spacing). */
function page(...events: string[]): RawEvents {
  const body = Buffer.from(`[${events.join(',')}]`);
  const spans = scanPage(body);
  return { body, offsets: spans.offsets, count: spans.count };
}

const RAW_EVENT =
  '{"actor":{"alternateId":"Jane@Example.COM","detail":null},"score":2.50,"name":"caf\\u00e9","tags":[]}';

const SCRIPT = `
mode = "identity"
kept = nil
function transform(e)
  if mode == "identity" then return e end
  if mode == "read" then local _ = e.actor.alternateId .. tostring(e.score) .. e.name; return e end
  if mode == "add" then e.actor_domain = e.actor.alternateId:match("@(.+)$"):lower(); return e end
  if mode == "same-value" then e.score = 2.5; e.actor.detail = json.null; return e end
  if mode == "nested" then e.actor.alternateId = "x"; return e end
  if mode == "remove" then e.name = nil; return e end
  if mode == "remove-add-back" then e.name = nil; e.name = "caf\\u{e9}"; return e end
  if mode == "rawset" then rawset(e, "raw", true); return e end
  if mode == "pairs" then local n = 0; for k in pairs(e) do n = n + 1 end; e.fields = n; return e end
  if mode == "encode" then return { copy = json.decode(json.encode(e)), wrapped = e } end
  if mode == "keep" then kept = e; return e end
  if mode == "stale" then return kept end
  if mode == "stale-read" then return { x = kept.score } end
  if mode == "absent" then if e.nope == nil and e[1] == nil then return e end end
  if mode == "tag" then e._okta_event_type = "mine"; return e end
  if mode == "meta" then return { mt = getmetatable(e), len = #e } end
  if mode == "set-x" then e.x = 2; return e end
end
function set_mode(m) mode = m end
`;

let sb: ScriptSandbox;

beforeAll(async () => {
  sb = await ScriptSandbox.create({ name: 'p.lua', chunkName: 'p.lua', limits: { ...DEFAULT_LIMITS } });
  sb.loadScript(new TextEncoder().encode(SCRIPT));
});
afterAll(() => sb.close());

function run(mode: string, raw = page(RAW_EVENT), omit: string[] = []): TransformedEvents {
  sb.call('set_mode', [mode], 0);
  return sb.transformPage(raw, omit);
}

describe('events in transform (proxy tables decoded on access)', () => {
  it('gives back an event returned untouched, or only read, as its own bytes', () => {
    for (const mode of ['identity', 'read', 'same-value', 'absent']) {
      const out = run(mode);
      expect([...out.edits], mode).toEqual([EventEdit.UNCHANGED]);
    }
  });

  it('splices fields a script adds after the event bytes, untouched', () => {
    const out = run('add');
    expect([...out.edits]).toEqual([EventEdit.ADDED]);
    expect(out.text[0]).toBe('"actor_domain":"example.com"');
  });

  it('re-serialises an event whose original fields changed, in the original key order', () => {
    expect(JSON.parse(run('nested').text[0]!)).toEqual({
      actor: { alternateId: 'x', detail: null },
      score: 2.5,
      name: 'café',
      tags: [],
    });
    const removed = run('remove');
    expect([...removed.edits]).toEqual([EventEdit.REPLACED]);
    expect(removed.text[0]).toBe(
      '{"actor":{"alternateId":"Jane@Example.COM","detail":null},"score":2.5,"tags":[]}',
    );
    expect([...run('remove-add-back').edits]).toEqual([EventEdit.UNCHANGED]);
  });

  it('sees fields set with rawset, iterates every field with pairs', () => {
    expect(run('rawset').text[0]).toBe('"raw":true');
    expect(run('pairs').text[0]).toBe('"fields":4');
  });

  it('reads an event as JSON inside other values', () => {
    const out = run('encode');
    expect([...out.edits]).toEqual([EventEdit.REPLACED]);
    const expected = {
      actor: { alternateId: 'Jane@Example.COM', detail: null },
      score: 2.5,
      name: 'café',
      tags: [],
    };
    expect(JSON.parse(out.text[0]!)).toEqual({ copy: expected, wrapped: expected });
  });

  it('refuses an event kept past its transform call, naming the problem', () => {
    run('keep');
    expect(() => run('stale-read')).toThrow(
      /an event can only be used during the transform call it was given to/,
    );
    expect(() => run('stale')).toThrow(/an event can only be used during the transform call it was given to/);
    // The sandbox stays usable.
    expect([...run('identity').edits]).toEqual([EventEdit.UNCHANGED]);
  });

  it('leaves out tag keys (the host adds the tags over them)', () => {
    expect([...run('tag', page(RAW_EVENT), ['_okta_event_type']).edits]).toEqual([EventEdit.UNCHANGED]);
  });

  it('protects the proxy metatable', () => {
    expect(JSON.parse(run('meta').text[0]!)).toEqual({ mt: 'event', len: 0 });
  });

  it('finds a key the page holds only in some events, or only escaped, whatever the escape flags say', () => {
    const events = [
      '{"a":1}',
      '{"note":"\\"x\\" and \\"x\\"","y":"x"}',
      '{"a":"\\"x\\""}',
      '{"\\u0078":1}',
      '{"b":1,"x":1}',
      '{"x":2}',
    ];
    const base = page(...events);
    const flags = scanPage(Buffer.from(base.body)).flags;
    const escapedKeys = Uint8Array.from(flags, (f) => (f & SpanFlag.ESCAPED_KEY ? 1 : 0));
    expect([...escapedKeys]).toEqual([0, 0, 0, 1, 0, 0]);
    for (const raw of [base, { ...base, escapedKeys }]) {
      sb.call('set_mode', ['set-x'], 0);
      const out = sb.transformPage(raw);
      // Absent: the field is added after the bytes; present: the event is written again with x = 2.
      expect([...out.edits]).toEqual([
        EventEdit.ADDED,
        EventEdit.ADDED,
        EventEdit.ADDED,
        EventEdit.REPLACED,
        EventEdit.REPLACED,
        EventEdit.UNCHANGED,
      ]);
      expect(out.text[3]).toBe('{"x":2}');
      expect(out.text[4]).toBe('{"b":1,"x":2}');
    }
    // No event of the page holds the key at all.
    sb.call('set_mode', ['set-x'], 0);
    expect([...sb.transformPage(page('{"a":1}', '{"b":"y"}')).edits]).toEqual([
      EventEdit.ADDED,
      EventEdit.ADDED,
    ]);
  });

  it('handles many events, escaped keys and whitespace', () => {
    const raw = page('{ "a\\u0062" : 1 , "c":{"d":[1,{"e":"}"}]} }', '{}', RAW_EVENT);
    sb.call('set_mode', ['pairs'], 0);
    const out = sb.transformPage(raw);
    expect([...out.edits]).toEqual([EventEdit.ADDED, EventEdit.ADDED, EventEdit.ADDED]);
    expect(out.text).toEqual(['"fields":2', '"fields":0', '"fields":4']);
  });
});
