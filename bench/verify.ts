/*
 * Compares a collector's output file with the bytes the emulator served, line by line, without holding
 * the output in memory (the 1M-event run writes about 2 GB).
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** Which form a collector writes: the event's bytes plus oktail's tag, or the event alone. */
export type OutputForm = 'tagged' | 'plain';

export interface Verification {
  lines: number;
  /** Lines byte-identical to the served event (plus the tag, for tagged output). */
  identical: number;
  /** Lines holding the right event (same uuid, in the served order), identical or not. */
  inOrder: number;
  /** Lines where `interface` came out as `_interface` (what Okta's SDK models do). */
  renamedInterface: number;
  /** The first line that differs, cut short, to show how. */
  firstDifference: { line: number; served: string; written: string } | null;
}

/** How a tagged event ends: the served event's closing brace replaced by oktail's tag and a brace. */
export const TAG_TAIL = ',"_okta_event_type":"systemLog"}';
const TAG_TAIL_BYTES = Buffer.from(TAG_TAIL);
const UUID = /"uuid":"([^"]+)"/;
const RENAMED = Buffer.from('"_interface":');

/** Yields the lines (without "\n") of a file, as Buffers. */
async function* lines(path: string): AsyncGenerator<Buffer> {
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let data = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
    let start = 0;
    for (let nl = data.indexOf(0x0a, start); nl !== -1; nl = data.indexOf(0x0a, start)) {
      yield data.subarray(start, nl);
      start = nl + 1;
    }
    data = data.subarray(start);
    carry = Buffer.from(data);
  }
  if (carry.length > 0) yield carry;
}

/** The raw events the emulator wrote, one Buffer each. */
export async function readServed(rawFile: string): Promise<Buffer[]> {
  const text = await readFile(rawFile);
  const out: Buffer[] = [];
  let start = 0;
  for (let nl = text.indexOf(0x0a); nl !== -1; nl = text.indexOf(0x0a, start)) {
    out.push(text.subarray(start, nl));
    start = nl + 1;
  }
  return out;
}

function isIdentical(written: Buffer, served: Buffer, form: OutputForm): boolean {
  if (form === 'plain') return written.equals(served);
  const body = served.length - 1;
  return (
    written.length === body + TAG_TAIL_BYTES.length &&
    written.subarray(0, body).equals(served.subarray(0, body)) &&
    written.subarray(body).equals(TAG_TAIL_BYTES)
  );
}

/**
 * Checks `outFile` against the served events, which the org held as `served` repeated in order (line i
 * holds event i modulo the pool).
 */
export async function verifyOutput(
  outFile: string,
  served: Buffer[],
  form: OutputForm,
): Promise<Verification> {
  const result: Verification = {
    lines: 0,
    identical: 0,
    inOrder: 0,
    renamedInterface: 0,
    firstDifference: null,
  };
  for await (const line of lines(outFile)) {
    const expected = served[result.lines % served.length]!;
    result.lines++;
    if (isIdentical(line, expected, form)) {
      result.identical++;
      result.inOrder++;
      continue;
    }
    if (line.includes(RENAMED)) result.renamedInterface++;
    const want = UUID.exec(expected.toString('latin1'))?.[1];
    const got = UUID.exec(line.toString('latin1'))?.[1];
    if (want !== undefined && want === got) result.inOrder++;
    if (result.firstDifference === null) {
      result.firstDifference = { line: result.lines, ...firstDiff(expected.toString(), line.toString()) };
    }
  }
  return result;
}

/** The neighbourhood of the first differing character of two lines. */
function firstDiff(served: string, written: string): { served: string; written: string } {
  let i = 0;
  while (i < served.length && i < written.length && served[i] === written[i]) i++;
  const from = Math.max(0, i - 30);
  return { served: served.slice(from, i + 50), written: written.slice(from, i + 50) };
}
