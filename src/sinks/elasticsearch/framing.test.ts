import { describe, expect, it } from 'vitest';
import {
  buildBulkBody,
  classifyBulkResponse,
  compileIndexTemplate,
  indexTemplateProblem,
} from './framing.js';
import { itemsOf } from '../shared/network-sink.js';

const ev = (uuid: string, published: string) => ({
  bytes: Buffer.from(`{"uuid":"${uuid}","published":"${published}","n":2.50,"_okta_event_type":"systemLog"}`),
  uuid,
  published,
  eventType: 'user.session.start',
  severity: 'INFO',
  source: 'okta',
  domain: 'acme.okta.com',
});

describe('index templates', () => {
  it('formats each event by its own published time, in UTC', () => {
    const index = compileIndexTemplate('okta-logs-%Y.%m.%d');
    expect(index('2026-11-28T23:59:59.999Z')).toBe('okta-logs-2026.11.28');
    expect(index('2026-11-29T00:30:00.000+01:00')).toBe('okta-logs-2026.11.28');
    expect(index('2026-01-02T00:00:00.000Z')).toBe('okta-logs-2026.01.02');
    expect(compileIndexTemplate('x-%Y-%j-%H-%%')('2026-02-01T05:00:00Z')).toBe('x-2026-032-05-%');
    expect(compileIndexTemplate('okta')('2026-02-01T05:00:00Z')).toBe('okta');
  });

  it('uses the current time for an event without published', () => {
    expect(compileIndexTemplate('o-%Y', () => Date.UTC(2031, 0, 1))(null)).toBe('o-2031');
  });

  it('refuses names Elasticsearch would refuse', () => {
    expect(indexTemplateProblem('okta-logs-%Y.%m.%d')).toBeNull();
    expect(indexTemplateProblem('Okta')).toContain('lower case');
    expect(indexTemplateProblem('okta logs')).toContain('must not contain');
    expect(indexTemplateProblem('_okta')).toContain('must not start');
    expect(indexTemplateProblem('okta-%Q')).toContain('unknown field %Q');
  });
});

describe('bulk bodies', () => {
  it('frames a create per event with the uuid as _id and the bytes as the source', () => {
    const items = [ev('a', '2026-11-28T10:00:00Z'), { ...ev('b', '2026-11-29T10:00:00Z'), uuid: null }];
    const body = buildBulkBody(itemsOf(items), compileIndexTemplate('okta-%Y.%m.%d')).toString();
    expect(body).toBe(
      '{"create":{"_index":"okta-2026.11.28","_id":"a"}}\n' +
        items[0]!.bytes.toString() +
        '\n{"create":{"_index":"okta-2026.11.29"}}\n' +
        items[1]!.bytes.toString() +
        '\n',
    );
  });
});

describe('bulk bodies', () => {
  it('writes ids that need escaping as JSON strings and switches index when an event falls on another day', () => {
    const ids = ['00u1ab', 'with"quote', 'back\\slash', 'é日本', 'tab\there', '', null, 'plain-id_1.2'];
    const items = ids.map((uuid, i) => ({
      ...ev('x', `2026-11-${String(28 + (i % 3)).padStart(2, '0')}T10:00:00Z`),
      uuid,
    }));
    const template = compileIndexTemplate('okta-%Y.%m.%d');
    const expected = items
      .map((e) => {
        const index = JSON.stringify(template(e.published));
        const id = e.uuid === null ? '' : `,"_id":${JSON.stringify(e.uuid)}`;
        return `{"create":{"_index":${index}${id}}}\n${e.bytes.toString()}\n`;
      })
      .join('');
    const body = buildBulkBody(itemsOf(items), compileIndexTemplate('okta-%Y.%m.%d'));
    expect(body.toString('utf8')).toBe(expected);
    expect(body.length).toBe(Buffer.byteLength(expected));
  });
});

describe('bulk responses', () => {
  const items = [
    ev('a', '2026-11-28T10:00:00Z'),
    ev('b', '2026-11-28T10:00:00Z'),
    ev('c', '2026-11-28T10:00:00Z'),
  ];
  const item = (status: number, error?: object) => ({ create: { _index: 'okta', _id: 'x', status, error } });

  it('takes an answer without errors and with one result per event as delivered, and nothing less', () => {
    const answer = (errors: boolean, n: number) =>
      JSON.stringify({ errors, took: 3, items: Array.from({ length: n }, () => item(201)) });
    expect(classifyBulkResponse(200, answer(false, 3), itemsOf(items))).toEqual({ kind: 'ok' });
    expect(classifyBulkResponse(200, answer(false, 2), itemsOf(items)).kind).toBe('retry');
    expect(classifyBulkResponse(200, answer(false, 3).slice(0, -2), itemsOf(items)).kind).toBe('retry');
    const spaced = JSON.stringify({ errors: false, items: [item(201), item(201), item(201)] }, null, 1);
    expect(classifyBulkResponse(200, spaced, itemsOf(items))).toEqual({ kind: 'ok' });
  });

  it('counts a version conflict as already delivered', () => {
    const body = JSON.stringify({
      errors: true,
      items: [
        item(201),
        item(409, { type: 'version_conflict_engine_exception', reason: 'exists' }),
        item(201),
      ],
    });
    expect(classifyBulkResponse(200, body, itemsOf(items))).toEqual({ kind: 'ok' });
  });

  it('retries 429 items alone and names mapping errors with the uuid', () => {
    const body = JSON.stringify({
      errors: true,
      items: [
        item(429, { type: 'es_rejected_execution_exception', reason: 'rejected execution' }),
        item(201),
        item(400, { type: 'mapper_parsing_exception', reason: 'failed to parse field [n]' }),
      ],
    });
    const outcome = classifyBulkResponse(200, body, itemsOf(items));
    expect(outcome.kind).toBe('partial');
    const failed = (outcome as { failed: { index: number; retryable: boolean; reason: string }[] }).failed;
    expect(failed.map((f) => [f.index, f.retryable])).toEqual([
      [0, true],
      [2, false],
    ]);
    expect(failed[1]!.reason).toContain(
      'event c in index okta: 400 mapper_parsing_exception: failed to parse field [n]',
    );
    expect(failed[1]!.reason).toContain('fix the mapping');
  });

  it('maps whole-request statuses', () => {
    const e429 = JSON.stringify({
      error: { type: 'es_rejected_execution_exception', reason: 'busy' },
      status: 429,
    });
    expect(classifyBulkResponse(429, e429, itemsOf(items), 2000)).toMatchObject({
      kind: 'retry',
      retryAfterMs: 2000,
    });
    expect(classifyBulkResponse(503, '{}', itemsOf(items)).kind).toBe('retry');
    expect(classifyBulkResponse(413, '', itemsOf(items)).kind).toBe('split');
    const auth = classifyBulkResponse(
      401,
      '{"error":{"type":"security_exception","reason":"missing"}}',
      itemsOf(items),
    );
    expect(auth).toMatchObject({ kind: 'permanent' });
    expect((auth as { message: string }).message).toContain('security_exception: missing');
    expect(classifyBulkResponse(200, '{"errors":false,"items":[]}', itemsOf(items)).kind).toBe('retry');
    expect(classifyBulkResponse(200, 'garbage', itemsOf(items)).kind).toBe('retry');
  });
});
