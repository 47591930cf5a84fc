import { createHash } from 'node:crypto';
import type { SinkItems } from '../shared/network-sink.js';
import { formatStrftime } from '../shared/strftime.js';

/** `key_prefix` uses the shared strftime fields (UTC); these names are what the s3 sink calls them. */
export {
  unknownStrftimeFields as unknownPrefixFields,
  formatStrftime as formatPrefix,
} from '../shared/strftime.js';

/** Characters that need no escaping in S3 keys or in the URLs and tools that show them. */
function keySafe(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, '_');
}

/**
 * The object key of a request: `<prefix><source>-<published>-<uuid>.ndjson[.gz]`, where published and
 * uuid are the first event's. The key depends only on where the object starts in the source's log, never
 * on the wall clock, so the same events sent again after a crash overwrite the same object.
 *
 * The event count is deliberately not part of the key: a page fetched again from the same cursor starts
 * with the same event but can hold more events (ones Okta persisted since), and its object must replace
 * the shorter one rather than sit beside it.
 */
export function objectKey(
  prefix: string,
  items: Pick<SinkItems, 'length' | 'uuid' | 'published' | 'source' | 'bytes'>,
  compressed: boolean,
): string {
  if (items.length === 0) throw new Error('objectKey needs at least one event');
  const published = items.published(0);
  const publishedMs = published === null ? Number.NaN : Date.parse(published);
  const date = new Date(Number.isNaN(publishedMs) ? 0 : publishedMs);
  // An event without a uuid (Okta always sends one) is named by its content, which is just as stable.
  const id =
    items.uuid(0) ?? `sha256-${createHash('sha256').update(items.bytes(0)).digest('hex').slice(0, 32)}`;
  const stamp = date.toISOString().replace(/[-:]/g, '');
  const name = `${keySafe(items.source(0))}-${stamp}-${keySafe(id)}.ndjson${compressed ? '.gz' : ''}`;
  return formatStrftime(prefix, date) + name;
}
