import { isUtf8 } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { isOktailError, OktailError } from '../../core/errors.js';
import { EventEdit } from '../../core/collection-logic.js';
import type { JsonObject } from '../../core/json.js';
import { batchFromNdjson, eventFields, type KnownFields } from '../../core/event-batch.js';
import {
  eventRef,
  MAX_PAGE_DEPTH,
  parseEvent,
  renderNdjson,
  renderObjects,
  scanPage,
  SpanFlag,
} from './page-body.js';

const TAGS = { _okta_event_type: 'systemLog' } as const;
const TAG_MEMBER = '"_okta_event_type":"systemLog"';

function page(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/** Output lines without their trailing newline; asserts the payload ends with one. */
function linesOf(ndjson: Buffer): string[] {
  const text = ndjson.toString('utf8');
  if (text === '') return [];
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}

/** The line we expect for an event written through the fast path: its text with the tag spliced in. */
function spliced(eventText: string): string {
  const oneLine = eventText.replace(/[\r\n]/g, ' ');
  const empty = Object.keys(JSON.parse(eventText) as object).length === 0;
  return `${oneLine.slice(0, -1)}${empty ? '' : ','}${TAG_MEMBER}}`;
}

function rejection(body: Buffer | string): OktailError {
  try {
    scanPage(typeof body === 'string' ? page(body) : body);
  } catch (err) {
    expect(isOktailError(err, 'OKTA_FETCH_FAILED')).toBe(true);
    expect((err as OktailError).retryable).toBe(true);
    return err as OktailError;
  }
  throw new Error(`scanPage accepted ${JSON.stringify(String(body).slice(0, 60))}`);
}

/** What scanPage must accept: UTF-8 JSON (BOM allowed) whose value is an array of objects. */
function oracleCount(body: Buffer): number | null {
  if (!isUtf8(body)) return null;
  let text = body.toString('utf8');
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(value)) return null;
  const objects = value.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e));
  return objects ? value.length : null;
}

function scanCount(body: Buffer): number | null {
  try {
    return scanPage(body).count;
  } catch (err) {
    if (!isOktailError(err, 'OKTA_FETCH_FAILED')) throw err;
    return null;
  }
}

// Small, seeded PRNG so a failing fuzz case reproduces.
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random JSON text (not via JSON.stringify, so escapes, number forms and whitespace vary freely). */
class JsonGen {
  constructor(readonly rnd: () => number) {}

  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  ws(): string {
    return this.rnd() < 0.7 ? '' : this.pick([' ', '\t', '\n', '\r\n', '  ', '\n    ', ' \r']);
  }

  hex4(): string {
    const h = this.int(0x10000).toString(16).padStart(4, '0');
    return this.rnd() < 0.5 ? h : h.toUpperCase();
  }

  string(): string {
    let s = '"';
    const parts = this.int(8);
    for (let k = 0; k < parts; k++) {
      const r = this.rnd();
      if (r < 0.35) s += 'abcXYZ019 _-'.slice(this.int(6), 6 + this.int(6));
      else if (r < 0.45) s += this.pick(['\\"', '\\\\', '\\/', '\\b', '\\f', '\\n', '\\r', '\\t']);
      else if (r < 0.55) s += `\\u${this.hex4()}`;
      else if (r < 0.6) s += this.pick(['\\ud83d\\ude00', '\\u2028', '\\u0000', '\\u001f']);
      else if (r < 0.7) s += String.fromCodePoint(0x80 + this.int(0xd800 - 0x80));
      else if (r < 0.75) s += String.fromCodePoint(0xe000 + this.int(0x10000 - 0xe000));
      else if (r < 0.8) s += String.fromCodePoint(0x10000 + this.int(0x100000));
      else if (r < 0.85) s += this.pick(['\u2028', '\u2029', '\u007f', 'é', '日本', '😀']);
      else s += 'okta';
    }
    return s + '"';
  }

  number(): string {
    if (this.rnd() < 0.3) {
      return this.pick([
        '0',
        '-0',
        '2.50',
        '1e5',
        '1E+05',
        '-12.5e-3',
        '0.0',
        '12345678901234567890',
        '1e-7',
      ]);
    }
    let s = this.rnd() < 0.3 ? '-' : '';
    s += this.rnd() < 0.2 ? '0' : String(1 + this.int(9)) + String(this.int(100000)).slice(0, this.int(6));
    if (this.rnd() < 0.4) s += '.' + String(this.int(1000000)).padStart(1 + this.int(5), '0');
    if (this.rnd() < 0.3) s += this.pick(['e', 'E']) + this.pick(['', '+', '-']) + String(this.int(300));
    return s;
  }

  value(depth: number): string {
    const r = this.rnd();
    if (depth > 4 || r < 0.35) return this.string();
    if (r < 0.55) return this.number();
    if (r < 0.65) return this.pick(['true', 'false', 'null']);
    if (r < 0.85) return this.object(depth + 1);
    return this.array(depth + 1);
  }

  array(depth: number): string {
    const n = this.int(4);
    const items = Array.from({ length: n }, () => this.ws() + this.value(depth) + this.ws());
    return n === 0 ? `[${this.ws()}]` : `[${items.join(',')}]`;
  }

  key(): string {
    return this.rnd() < 0.7
      ? `"${this.pick(['uuid', 'published', 'eventType', 'severity', '\\u0075uid', 'actor', 'a', 'b', 'é', '日本', ''])}"`
      : this.string();
  }

  object(depth: number, extraKey?: string): string {
    const n = this.int(5);
    const members = Array.from(
      { length: n },
      () => `${this.ws()}${this.key()}${this.ws()}:${this.ws()}${this.value(depth)}${this.ws()}`,
    );
    if (extraKey !== undefined) {
      members.splice(this.int(n + 1), 0, `${extraKey}${this.ws()}:${this.ws()}${this.value(depth)}`);
    }
    return members.length === 0 ? `{${this.ws()}}` : `{${members.join(',')}}`;
  }
}

describe('scanPage', () => {
  it('finds no events in an empty array', () => {
    expect(scanPage(page('[]')).count).toBe(0);
    expect(scanPage(page(' \r\n\t[ \n ] \n')).count).toBe(0);
  });

  it('records each element from its opening to just after its closing brace', () => {
    const body = page(' [ {"a":1} ,\n{ "b" : [ 2 ] }\t]\n');
    const spans = scanPage(body);
    expect(spans.count).toBe(2);
    expect(body.toString('utf8', spans.offsets[0], spans.offsets[1])).toBe('{"a":1}');
    expect(body.toString('utf8', spans.offsets[2], spans.offsets[3])).toBe('{ "b" : [ 2 ] }');
  });

  it('flags pretty-printed and empty elements only', () => {
    const spans = scanPage(page('[\n{"a":1},\r\n{ \n"a":1},{"a":\r1},{ },{}\n]'));
    expect(Array.from(spans.flags)).toEqual([
      0,
      SpanFlag.NEWLINE,
      SpanFlag.NEWLINE,
      SpanFlag.EMPTY,
      SpanFlag.EMPTY,
    ]);
  });

  it('tolerates a UTF-8 byte order mark', () => {
    expect(scanPage(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), page('[{"a":1}]')])).count).toBe(1);
  });

  it('accepts nesting up to the depth limit and rejects deeper nesting', () => {
    // The page's array and the event are two levels; the rest is nested inside the event.
    const nested = (levels: number) => `[{"a":${'['.repeat(levels)}${']'.repeat(levels)}}]`;
    expect(scanPage(page(nested(MAX_PAGE_DEPTH - 2))).count).toBe(1);
    expect(rejection(nested(MAX_PAGE_DEPTH - 1)).message).toMatch(
      /nesting deeper than 512 levels at byte \d+/,
    );
    expect(rejection(`[{"a":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}]`).message).toMatch(
      /nesting deeper/,
    );
  });

  it.each([
    ['', /the body is empty/],
    ['   \n', /the body is empty/],
    ['[', /truncated at byte 1/],
    ['[{"a":1},', /truncated at byte 9/],
    ['[{"a":1}', /truncated at byte 8/],
    ['[{"a":"abc', /truncated at byte 10/],
    ['[{"a":"abc\\', /truncated at byte 11/],
    ['[{"a":"\\u12', /truncated at byte 11/],
    ['[{"a":tr', /truncated at byte 8/],
    ['[{"a":-', /truncated at byte 7/],
    ['[{"a":1}]garbage', /unexpected data after the array at byte 9/],
    ['[{"a":1}] [{"a":1}]', /unexpected data after the array at byte 10/],
    ['{"a":1}', /JSON object, not an array/],
    ['"[{}]"', /top-level value is not an array \(starts with '"'\)/],
    ['[1,2]', /element 0 is not an object \(byte 1\)/],
    ['[{},null]', /element 1 is not an object \(byte 4\)/],
    ['[null]', /element 0 is not an object/],
    ['[[{"a":1}]]', /element 0 is not an object/],
    ['[{"a":01}]', /invalid number at byte 6 \(leading zero\)/],
    ['[{"a":-01}]', /invalid number at byte 6 \(leading zero\)/],
    ['[{"a":-}]', /invalid number at byte 6 \('-' needs a digit\)/],
    ['[{"a":+1}]', /expected a value at byte 6, found '\+'/],
    ['[{"a":.5}]', /expected a value at byte 6/],
    ['[{"a":1.}]', /invalid number at byte 6 \(no digit after '.'\)/],
    ['[{"a":1.e5}]', /no digit after '.'/],
    ['[{"a":1e}]', /invalid number at byte 6 \(no digit in exponent\)/],
    ['[{"a":1e+}]', /no digit in exponent/],
    ['[{"a":0x1}]', /expected ',' or '}' at byte 7, found 'x'/],
    ['[{"a":"\\x"}]', /invalid escape in a string at byte 7/],
    ['[{"a":"\\u12G4"}]', /invalid \\u escape in a string at byte 7 \(needs 4 hex digits\)/],
    ['[{"a":"tab\there"}]', /control character \(byte 0x09\) inside a string at byte 10/],
    ['[{"a":"line\nbreak"}]', /control character \(byte 0x0a\) inside a string/],
    ['[{"a":"nul\u0000"}]', /control character \(byte 0x00\) inside a string/],
    ['[{"a":tru}]', /invalid literal at byte 6/],
    ['[{"a":nul}]', /invalid literal/],
    ['[{"a":True}]', /expected a value at byte 6, found 'T'/],
    ['[{"a":1,}]', /trailing comma before byte 8/],
    ['[{"a":1},]', /trailing comma before byte 9/],
    ['[{"a":[1,]}]', /trailing comma or missing value before byte 9/],
    ['[{"a":[,1]}]', /expected a value at byte 7, found ','/],
    ['[,{"a":1}]', /element 0 is not an object/],
    ['[{"a" 1}]', /expected ':' at byte 6, found '1'/],
    ['[{"a":1 "b":2}]', /expected ',' or '}' at byte 8, found '"'/],
    ['[{a:1}]', /expected a string key or } at byte 2, found 'a'/],
    ['[{"a":1,b:2}]', /expected a string key at byte 8/],
    ['[{"a":[1}]}]', /expected ',' or '\]' at byte 8, found '}'/],
    ['[{"a":1]', /expected ',' or '}' at byte 7/],
    ['[{"a":1}}', /expected ',' or '\]' after element 0 at byte 8/],
  ])('rejects %j', (body, message) => {
    expect(rejection(body).message).toMatch(message);
  });

  it('says an HTML body is not JSON without repeating its content', () => {
    const err = rejection('<html><body>Internal error for user secret@example.com</body></html>');
    expect(err.message).toBe("Response body is not JSON (starts with '<' at byte 0)");
  });

  it('rejects invalid UTF-8 and says where', () => {
    const body = Buffer.concat([page('[{"a":"ok'), Buffer.from([0xc3, 0x28]), page('"}]')]);
    expect(rejection(body).message).toMatch(/invalid UTF-8 at byte 9/);
    const surrogate = Buffer.concat([page('[{"a":"'), Buffer.from([0xed, 0xa0, 0x80]), page('"}]')]);
    expect(rejection(surrogate).message).toMatch(/invalid UTF-8 at byte 7/);
    const overlong = Buffer.concat([page('[{"a":"'), Buffer.from([0xc0, 0xaf]), page('"}]')]);
    expect(rejection(overlong).message).toMatch(/invalid UTF-8 at byte 7/);
  });

  it('rejects a non-ASCII byte outside strings at its offset', () => {
    expect(
      rejection(Buffer.concat([page('[{"a":1}'), Buffer.from([0xc2, 0xa0]), page(']')])).message,
    ).toMatch(/expected ',' or '\]' after element 0 at byte 8, found byte 0xc2/);
  });
});

describe('renderNdjson', () => {
  it('writes each event byte for byte with the tag spliced before its closing brace', () => {
    const event =
      '{"uuid":"u-1","s":"é ünïcödé 😀 \u2028 \u2029","e":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u2028\\ud83d\\ude00\\uD83D",' +
      '"n":[2.50,1e5,-0,1E+05,-12.5e-3,12345678901234567890,1e400,0.0],' +
      '"x":{"unknown":{"deep":[true,false,null,{},[]]},"dup":1,"dup":2}}';
    const body = page(`[${event},{"a":1}]`);

    const lines = linesOf(renderNdjson(body, scanPage(body), TAGS));

    expect(lines).toEqual([`${event.slice(0, -1)},${TAG_MEMBER}}`, `{"a":1,${TAG_MEMBER}}`]);
    expect(Buffer.from(lines[0]!).subarray(0, -TAG_MEMBER.length - 2)).toEqual(
      Buffer.from(event).subarray(0, -1),
    );
  });

  it('keeps whitespace between tokens of a compact-but-spaced event unchanged', () => {
    const body = page('[ { "a" : 1 , "b" : [ 1 , 2 ] } ]');
    expect(linesOf(renderNdjson(body, scanPage(body), TAGS))).toEqual([
      `{ "a" : 1 , "b" : [ 1 , 2 ] ,${TAG_MEMBER}}`,
    ]);
  });

  it('puts a pretty-printed event on one line that parses to the same value plus the tag', () => {
    const events = [{ actor: { id: '00u1', type: 'User' }, n: [1, 2.5], s: 'a\nb' }, { a: {} }];
    const body = page(JSON.stringify(events, null, 2).replace(/\n/g, '\r\n'));

    const lines = linesOf(renderNdjson(body, scanPage(body), TAGS));

    expect(lines).toHaveLength(2);
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual(events.map((e) => ({ ...e, ...TAGS })));
  });

  it('tags an empty event without a leading comma', () => {
    const body = page('[{},{ },{\n}]');
    expect(linesOf(renderNdjson(body, scanPage(body), TAGS))).toEqual([
      `{${TAG_MEMBER}}`,
      `{ ${TAG_MEMBER}}`,
      `{ ${TAG_MEMBER}}`,
    ]);
  });

  it('overrides a tag key the event already has, leaving one such key', () => {
    const body = page('[{"a":1,"_okta_event_type":"other","b":2.50},{"_okta_event_typ\\u0065":7}]');

    const lines = linesOf(renderNdjson(body, scanPage(body), TAGS));

    expect(lines[0]).toBe(`{"a":1,"b":2.5,${TAG_MEMBER}}`);
    expect(lines[1]).toBe(`{${TAG_MEMBER}}`);
  });

  it('keeps an event byte-exact when the tag key appears only as a value or a nested key', () => {
    const event = '{"note":"_okta_event_type","x":{"_okta_event_type":2.50},"_other":1}';
    const body = page(`[${event}]`);
    expect(linesOf(renderNdjson(body, scanPage(body), TAGS))).toEqual([
      `${event.slice(0, -1)},${TAG_MEMBER}}`,
    ]);
  });

  it('keeps an own "__proto__" key when re-serialising', () => {
    const body = page('[{"__proto__":{"x":1},"_okta_event_type":0}]');
    const [line] = linesOf(renderNdjson(body, scanPage(body), TAGS));
    expect(line).toBe(`{"__proto__":{"x":1},${TAG_MEMBER}}`);
  });

  it('writes only the events `keep` selects', () => {
    const body = page('[{"i":0},{"i":1},{"i":2}]');
    const lines = linesOf(renderNdjson(body, scanPage(body), TAGS, { keep: (i) => i !== 1 }));
    expect(lines).toEqual([`{"i":0,${TAG_MEMBER}}`, `{"i":2,${TAG_MEMBER}}`]);
    expect(renderNdjson(body, scanPage(body), TAGS, { keep: () => false }).length).toBe(0);
  });

  it('serialises several tags, or none', () => {
    const body = page('[{"i":0},{}]');
    const spans = scanPage(body);
    expect(linesOf(renderNdjson(body, spans, { t: 'x', n: 1, o: { q: '"' } }))).toEqual([
      '{"i":0,"t":"x","n":1,"o":{"q":"\\""}}',
      '{"t":"x","n":1,"o":{"q":"\\""}}',
    ]);
    expect(linesOf(renderNdjson(body, spans, {}))).toEqual(['{"i":0}', '{}']);
  });

  it('renders into the buffer `output` returns, overwriting what an earlier page left there', () => {
    const reused = Buffer.alloc(256, 0x78);
    const sizes: number[] = [];
    const output = (size: number) => {
      sizes.push(size);
      return reused.subarray(0, size);
    };
    const first = page('[{"i":0},{"long":"abcdefghijklmnopqrstuvwxyz"}]');
    const a = renderNdjson(first, scanPage(first), TAGS, { output });
    expect(a.buffer).toBe(reused.buffer);
    expect(linesOf(a)).toEqual([
      `{"i":0,${TAG_MEMBER}}`,
      `{"long":"abcdefghijklmnopqrstuvwxyz",${TAG_MEMBER}}`,
    ]);
    const second = page('[{"j":1}]');
    const b = renderNdjson(second, scanPage(second), TAGS, { output });
    expect(b.buffer).toBe(reused.buffer);
    expect(linesOf(b)).toEqual([`{"j":1,${TAG_MEMBER}}`]);
    expect(sizes).toEqual([a.length, b.length]);
    expect(() => renderNdjson(second, scanPage(second), TAGS, { output: () => Buffer.alloc(3) })).toThrow(
      RangeError,
    );
  });

  it('writes nothing for an empty page', () => {
    const body = page('[]');
    expect(renderNdjson(body, scanPage(body), TAGS).length).toBe(0);
  });
});

describe('eventRef and parseEvent', () => {
  const body = page(
    '[{"uuid":"u-1","published":"2025-01-15T08:30:00.000Z","x":1},{"x":2},{"uuid":7,"published":null}]',
  );
  const spans = scanPage(body);

  it('reads uuid and published of an event', () => {
    expect(eventRef(body, spans, 0)).toEqual({ uuid: 'u-1', published: '2025-01-15T08:30:00.000Z' });
  });

  it('gives null for missing or non-string fields', () => {
    expect(eventRef(body, spans, 1)).toEqual({ uuid: null, published: null });
    expect(eventRef(body, spans, 2)).toEqual({ uuid: null, published: null });
  });

  it('parses one event and refuses an index outside the page', () => {
    expect(parseEvent(body, spans, 1)).toEqual({ x: 2 });
    expect(() => parseEvent(body, spans, 3)).toThrow(RangeError);
    expect(() => eventRef(body, spans, -1)).toThrow(RangeError);
  });
});

describe('renderObjects', () => {
  it('serialises events with the tags last, overriding an existing tag key', () => {
    const events: JsonObject[] = [{ a: 1 }, {}, { _okta_event_type: 'x', b: [true] }];
    const before = structuredClone(events);

    const lines = linesOf(renderObjects(events, TAGS));

    expect(lines).toEqual([`{"a":1,${TAG_MEMBER}}`, `{${TAG_MEMBER}}`, `{"b":[true],${TAG_MEMBER}}`]);
    expect(events).toEqual(before);
  });

  it('rejects a transformed event that is not an object', () => {
    expect(() => renderObjects([[] as unknown as JsonObject], TAGS)).toThrow(/event 0 is not an object/);
  });
});

describe("renderNdjson with a transform's edits", () => {
  it('keeps unchanged events byte for byte, splices added fields, writes replaced ones, skips dropped ones', () => {
    const body = Buffer.from('[{"n":2.50},{ }, {"x":1},{"_okta_event_type":"okta"},{"y":\n2}]');
    const spans = scanPage(body);
    const edits = {
      edits: Uint8Array.from([
        EventEdit.UNCHANGED,
        EventEdit.ADDED,
        EventEdit.DROPPED,
        EventEdit.ADDED,
        EventEdit.REPLACED,
      ]),
      text: [undefined, '"a":1', undefined, '"b":2', '{"z":3}'],
    };
    expect(linesOf(renderNdjson(body, spans, TAGS, { edits }))).toEqual([
      `{"n":2.50,${TAG_MEMBER}}`,
      `{ "a":1,${TAG_MEMBER}}`,
      `{"b":2,${TAG_MEMBER}}`,
      `{"z":3,${TAG_MEMBER}}`,
    ]);
    expect(linesOf(renderNdjson(body, spans, {}, { edits }))).toEqual([
      '{"n":2.50}',
      '{ "a":1}',
      '{"_okta_event_type":"okta","b":2}',
      '{"z":3}',
    ]);
  });

  it('refuses edits that do not match the page', () => {
    const body = Buffer.from('[{"a":1}]');
    const edits = { edits: new Uint8Array(2), text: [] };
    expect(() => renderNdjson(body, scanPage(body), TAGS, { edits })).toThrow(/2 results for 1 events/);
  });
});

describe('property: agreement with JSON.parse', () => {
  it('renders random valid pages to lines equal to each event plus the tag', () => {
    const gen = new JsonGen(mulberry32(20250115));
    let checked = 0;
    for (let p = 0; p < 300; p++) {
      const n = gen.int(6);
      const tagged = new Set<number>();
      const events = Array.from({ length: n }, (_, i) => {
        if (gen.rnd() < 0.05) {
          tagged.add(i);
          return gen.object(1, gen.pick(['"_okta_event_type"', '"_okta_event_typ\\u0065"']));
        }
        return gen.object(1);
      });
      const text =
        n === 0 ? `${gen.ws()}[${gen.ws()}]` : `[${events.map((e) => gen.ws() + e + gen.ws()).join(',')}]`;
      const body = page(text + gen.ws());

      const spans = scanPage(body);
      const lines = linesOf(renderNdjson(body, spans, TAGS));

      expect(spans.count).toBe(n);
      expect(lines).toHaveLength(n);
      events.forEach((event, i) => {
        const parsed = JSON.parse(lines[i]!) as unknown;
        const expected = { ...(JSON.parse(event) as object), ...TAGS };
        if (tagged.has(i)) {
          expect(parsed).toEqual(JSON.parse(JSON.stringify(expected)));
        } else {
          expect(lines[i]).toBe(spliced(event));
          expect(parsed).toEqual(expected);
        }
        checked++;
      });
    }
    expect(checked).toBeGreaterThan(500);
  });

  it("finds each event's uuid, published, eventType and severity as the batch's own reader does", () => {
    const gen = new JsonGen(mulberry32(424242));
    const read = (data: Buffer, known?: KnownFields) => {
      const fields = eventFields(batchFromNdjson('okta', 'acme.okta.com', data, known));
      const count = data.toString('latin1').split('\n').length - 1;
      return Array.from({ length: count }, (_, i) => [
        fields.uuid(i),
        fields.published(i),
        fields.eventType(i),
        fields.severity(i),
      ]);
    };
    let found = 0;
    for (let p = 0; p < 400; p++) {
      const n = 1 + gen.int(6);
      const events = Array.from({ length: n }, () =>
        gen.object(1, gen.pick(['"uuid"', '"published"', '"eventType"', '"severity"', '"x"'])),
      );
      const body = page(`[${events.map((e) => gen.ws() + e + gen.ws()).join(',')}]`);
      const spans = scanPage(body);
      const kinds = Uint8Array.from(events, () =>
        gen.pick([EventEdit.UNCHANGED, EventEdit.ADDED, EventEdit.REPLACED, EventEdit.DROPPED]),
      );
      const edits =
        p % 2 === 0
          ? undefined
          : {
              edits: kinds,
              text: Array.from(kinds, (kind) =>
                kind === EventEdit.ADDED
                  ? gen.pick(['"uuid":"added"', '"published":"added","severity":"WARN"', '"zz":1'])
                  : kind === EventEdit.REPLACED
                    ? gen.pick(['{"published":"replaced"}', '{}'])
                    : undefined,
              ),
            };
      const out: { known?: KnownFields } = {};
      const ndjson = renderNdjson(body, spans, TAGS, edits ? { edits, fields: out } : { fields: out });
      expect(out.known).toBeDefined();
      const expected = read(ndjson);
      expect(read(ndjson, out.known)).toEqual(expected);
      found += expected.flat().filter((v) => v !== null).length;
    }
    // Enough fields are strings at the top level that agreement on found values is exercised, not only on absence.
    expect(found).toBeGreaterThan(300);
  });

  it('rejects every truncation of a valid page that JSON.parse rejects', () => {
    const gen = new JsonGen(mulberry32(7));
    for (let p = 0; p < 25; p++) {
      const body = page(`[${Array.from({ length: 1 + gen.int(3) }, () => gen.object(1)).join(',')}]`);
      for (let cut = 0; cut < body.length; cut++) {
        const truncatedBody = body.subarray(0, cut);
        expect(scanCount(truncatedBody), `cut at ${cut} of ${body.toString()}`).toBe(
          oracleCount(truncatedBody),
        );
      }
    }
  });

  it('agrees with JSON.parse on randomly corrupted pages', () => {
    const rnd = mulberry32(99);
    const gen = new JsonGen(rnd);
    const interesting = Buffer.from('"\\{}[],:0123456789-+.eEtrufalsn \t\r\nx\u0000\u007f');
    let accepted = 0;
    for (let k = 0; k < 4000; k++) {
      const body = Buffer.from(
        page(`[${Array.from({ length: 1 + gen.int(3) }, () => gen.object(1)).join(',')}]`),
      );
      const edits = 1 + gen.int(3);
      let mutated: Buffer = body;
      for (let e = 0; e < edits; e++) {
        const at = gen.int(mutated.length);
        const byte = rnd() < 0.7 ? interesting[gen.int(interesting.length)]! : gen.int(256);
        const r = rnd();
        if (r < 0.5) mutated[at] = byte;
        else if (r < 0.75)
          mutated = Buffer.concat([mutated.subarray(0, at), Buffer.from([byte]), mutated.subarray(at)]);
        else mutated = Buffer.concat([mutated.subarray(0, at), mutated.subarray(at + 1)]);
      }
      const expected = oracleCount(mutated);
      expect(scanCount(mutated), `corrupted page ${JSON.stringify(mutated.toString('latin1'))}`).toBe(
        expected,
      );
      if (expected !== null) {
        accepted++;
        for (const line of linesOf(renderNdjson(mutated, scanPage(mutated), TAGS))) {
          expect(() => JSON.parse(line) as unknown).not.toThrow();
        }
      }
    }
    // Enough corruptions stay valid JSON that the acceptance side is exercised too.
    expect(accepted).toBeGreaterThan(100);
  });
});
