/** The smallest buffer an s3 object is gathered in. */
const MIN_BUFFER = 1 << 20;

/**
 * `current` if it holds `needed` bytes, else a buffer at least twice its size (at most `max`, unless
 * `needed` is more) holding its first `used` bytes. Shared by the s3 sink's uncompressed pages and its
 * gzip members, whose buffers pass from one object to the next.
 */
export function withRoom(current: Buffer | undefined, used: number, needed: number, max = Infinity): Buffer {
  if (current && current.length >= needed) return current;
  let size = Math.max(current?.length ?? 0, MIN_BUFFER);
  while (size < needed) size *= 2;
  size = Math.max(needed, Math.min(size, max));
  const grown = Buffer.allocUnsafe(size);
  current?.copy(grown, 0, 0, used);
  return grown;
}

/** Whether a buffer is worth keeping for the next object, which is likely to be as large as this one. */
export function worthKeeping(buffer: Buffer, used: number): boolean {
  return buffer.length <= MIN_BUFFER || used >= buffer.length / 4;
}
