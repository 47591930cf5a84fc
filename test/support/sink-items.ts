import { generateEvents, type EventRecord } from '../../src/emulator/events.js';
import type { SinkItem } from '../../src/sinks/shared/network-sink.js';

const TAG = Buffer.from(',"_okta_event_type":"systemLog"}');

/** The tagged bytes oktail delivers for an event the emulator serves. */
export function taggedBytes(event: EventRecord): Buffer {
  return Buffer.concat([event.raw.subarray(0, event.raw.lastIndexOf('}')), TAG]);
}

/** Sink items built from emulator events (with their tricky spellings), as the helper hands them over. */
export function generatedSinkItems(
  n: number,
  seed: number,
  source = 'okta',
  domain = 'acme.okta.com',
): SinkItem[] {
  return generateEvents(n, { seed, publishedStart: Date.parse('2026-11-01T00:00:00Z') }).map((e) => {
    const json = JSON.parse(e.raw.toString('utf8')) as Record<string, string>;
    return {
      bytes: taggedBytes(e),
      uuid: e.uuid,
      published: json.published ?? null,
      eventType: json.eventType ?? null,
      severity: json.severity ?? null,
      source,
      domain,
    };
  });
}

/** Sink items for events the Okta emulator holds, as the helper hands them over. */
export function sinkItems(
  records: readonly EventRecord[],
  domain = 'acme.okta.com',
  source = 'okta',
): SinkItem[] {
  return records.map((r) => ({
    bytes: taggedBytes(r),
    uuid: r.uuid,
    published: r.published,
    eventType: r.eventType,
    severity: 'INFO',
    source,
    domain,
  }));
}
