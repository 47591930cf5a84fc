import { createHash } from 'node:crypto';
import type { SinkItems } from '../shared/network-sink.js';

/** The strftime fields `key_prefix` may use (UTC). */
export const PREFIX_FIELDS: Record<string, (d: Date) => string> = {
  Y: (d) => String(d.getUTCFullYear()).padStart(4, '0'),
  m: (d) => String(d.getUTCMonth() + 1).padStart(2, '0'),
  d: (d) => String(d.getUTCDate()).padStart(2, '0'),
  H: (d) => String(d.getUTCHours()).padStart(2, '0'),
  M: (d) => String(d.getUTCMinutes()).padStart(2, '0'),
  S: (d) => String(d.getUTCSeconds()).padStart(2, '0'),
  j: (d) => {
    const start = Date.UTC(d.getUTCFullYear(), 0, 1);
    return String(Math.floor((d.getTime() - start) / 86_400_000) + 1).padStart(3, '0');
  },
  '%': () => '%',
};

/** The unknown `%x` fields of a prefix, for config validation. */
export function unknownPrefixFields(prefix: string): string[] {
  const bad: string[] = [];
  for (let i = 0; i < prefix.length; i++) {
    if (prefix[i] !== '%') continue;
    const field = prefix[i + 1];
    if (field === undefined || !(field in PREFIX_FIELDS)) bad.push(`%${field ?? ''}`);
    i++;
  }
  return bad;
}

export function formatPrefix(prefix: string, date: Date): string {
  return prefix.replace(/%(.)/g, (whole, field: string) => PREFIX_FIELDS[field]?.(date) ?? whole);
}

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
  return formatPrefix(prefix, date) + name;
}
