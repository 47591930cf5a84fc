import { describe, expect, it } from 'vitest';
import { itemsOf } from '../shared/network-sink.js';
import { buildEventBody, classifyHecResponse, hecTime, parseAckReply } from './framing.js';

const event = Buffer.from(
  '{"uuid":"u1","published":"2026-11-28T10:20:34.123Z","n":2.50,"_okta_event_type":"systemLog"}',
);
const item = {
  bytes: event,
  uuid: 'u1',
  published: '2026-11-28T10:20:34.123Z',
  eventType: 'user.session.start',
  severity: 'INFO',
  source: 'okta',
  domain: 'acme.okta.com',
};

describe('HEC framing', () => {
  it('turns published into epoch seconds with milliseconds', () => {
    expect(hecTime('2026-11-28T10:20:34.123Z')).toBe('1795861234.123');
    expect(hecTime('2026-11-28T10:20:34Z')).toBe('1795861234.000');
    expect(hecTime('2026-11-28T10:20:34.007+01:00')).toBe('1795857634.007');
    expect(hecTime(null)).toBeNull();
    expect(hecTime('not a date')).toBeNull();
  });

  it('splices the event bytes into the envelope without re-serialising them', () => {
    const body = buildEventBody(itemsOf([item, { ...item, published: null }]), {
      source: null,
      sourcetype: 'OktaIM2:log',
      index: 'okta',
    }).toString('utf8');
    const lines = body.split('\n');
    expect(lines[0]).toBe(
      '{"time":1795861234.123,"host":"acme.okta.com","source":"okta","sourcetype":"OktaIM2:log","index":"okta","event":' +
        event.toString() +
        '}',
    );
    expect(lines[1]).toBe(
      '{"host":"acme.okta.com","source":"okta","sourcetype":"OktaIM2:log","index":"okta","event":' +
        event.toString() +
        '}',
    );
    expect(lines[2]).toBe('');
    for (const line of lines.slice(0, 2)) expect(JSON.parse(line).event.n).toBe(2.5);
  });

  it("writes each envelope's time as hecTime reads its published, for every kind of timestamp", () => {
    const published = [
      '2026-11-28T10:20:34.123Z',
      '2026-11-28T10:20:34Z',
      '2026-11-28T10:20:34.007+01:00',
      '1969-12-31T23:59:58.500Z',
      '1960-01-01T00:00:00.001Z',
      '1970-01-01T00:00:00.000Z',
      '2286-11-20T17:46:40.000Z',
      'not a date',
      null,
    ];
    const items = published.map((p) => ({ ...item, published: p }));
    const lines = buildEventBody(itemsOf(items), { source: null, sourcetype: 'st', index: null })
      .toString('utf8')
      .split('\n')
      .slice(0, -1);
    expect(lines.map((line) => /^\{"time":([^,]*),/.exec(line)?.[1] ?? null)).toEqual(published.map(hecTime));
    for (const line of lines) expect(JSON.parse(line).event.uuid).toBe('u1');
  });

  it('uses a configured source and leaves index out when unset', () => {
    const body = buildEventBody(itemsOf([item]), {
      source: 'oktail',
      sourcetype: 'x',
      index: null,
    }).toString();
    expect(body).toContain('"source":"oktail"');
    expect(body).not.toContain('"index"');
  });
});

describe('HEC response classification', () => {
  it('reads the ackId of a success', () => {
    expect(classifyHecResponse(200, '{"text":"Success","code":0,"ackId":7}')).toEqual({
      kind: 'ok',
      ackId: 7,
    });
    expect(classifyHecResponse(200, '{"text":"Success","code":0}')).toEqual({ kind: 'ok', ackId: null });
  });

  it('retries busy and unhealthy servers', () => {
    for (const [status, body] of [
      [503, '{"text":"Server is busy","code":9}'],
      [500, '{"text":"Internal server error","code":8}'],
      [503, '{"text":"HEC is unhealthy, queues are full","code":18}'],
      [429, '{"text":"Queue at capacity","code":26}'],
      [502, '<html>Bad gateway</html>'],
    ] as const) {
      expect(classifyHecResponse(status, body).kind, body).toBe('retry');
    }
  });

  it('halts on token and configuration errors with the fix', () => {
    const ackDisabled = classifyHecResponse(400, '{"text":"ACK is disabled","code":14}');
    expect(ackDisabled).toMatchObject({ kind: 'permanent' });
    expect((ackDisabled as { message: string }).message).toContain(
      'enable indexer acknowledgement on the HEC token, or set acknowledgements: false',
    );
    expect(
      (classifyHecResponse(403, '{"text":"Invalid token","code":4}') as { message: string }).message,
    ).toContain('Splunk does not know this token');
    expect(classifyHecResponse(403, '{"text":"Token disabled","code":1}').kind).toBe('permanent');
    expect(
      classifyHecResponse(400, '{"text":"Incorrect index","code":7,"invalid-event-number":3}'),
    ).toMatchObject({
      kind: 'permanent',
      invalidEventNumber: 3,
    });
    expect(classifyHecResponse(400, '{"text":"Data channel is missing","code":10}').kind).toBe('permanent');
    expect(classifyHecResponse(404, 'Not found').kind).toBe('permanent');
  });

  it('splits a request that is too large', () => {
    expect(classifyHecResponse(413, '{"text":"Content too large","code":413}').kind).toBe('split');
  });
});

describe('HEC ack replies', () => {
  it('reads the acks object', () => {
    expect([...parseAckReply('{"acks":{"3":true,"4":false}}')!]).toEqual([
      [3, true],
      [4, false],
    ]);
    expect(parseAckReply('{"acks":[1]}')).toBeNull();
    expect(parseAckReply('nope')).toBeNull();
  });
});
