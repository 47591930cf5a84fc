import type { EventRecord } from '../../src/emulator/events.js';
import type { SinkItem } from '../../src/sinks/shared/network-sink.js';

const TAG = ',"_okta_event_type":"systemLog"}';

/** What the pipeline hands a network sink for an event the Okta emulator serves: its bytes plus the tag. */
export function taggedBytes(record: EventRecord): Buffer {
  return Buffer.from(record.raw.toString('utf8').slice(0, -1) + TAG, 'utf8');
}

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
