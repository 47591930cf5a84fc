import { constants, crc32, deflateRawSync } from 'node:zlib';
import { withRoom } from './room.js';

/**
 * One gzip member (RFC 1952) built page by page: each page is deflated on its own and ended with a sync
 * flush, which leaves the deflate stream open at a byte boundary, so the pieces joined in order are one
 * stream (pigz builds its blocks the same way). The object is a single member, which every gzip reader
 * takes, not a series of members, which some stop after the first of.
 *
 * Compressing in the calling thread, rather than in a zlib stream on libuv's pool (which hands every
 * 16 KiB of output back to the main thread), took about a tenth less of the collector's CPU in an
 * alternating trial. It blocks the event loop for some 10-20 ms per page of 1,000 events (about 2 MB).
 *
 * The pieces are copied into one buffer, which the caller may hand to the next member once the object
 * is stored. Memory outside V8's heap that grows between two full collections counts towards starting
 * the next one (and `run` lets the heap grow by only 25 % between them): holding each piece, joining them
 * per object and dropping zlib's 16 KiB output chunks made 18-19 full collections in a 200,000-event run
 * against the file sink's 5; this way 9, and a peak RSS of 107-110 MB instead of 115-122 (its CPU moved
 * less than the machine's noise).
 */
export class GzipMember {
  readonly #level: number;
  #buffer: Buffer;
  /** Bytes written to `#buffer`, the header included. */
  #length: number;
  #crc = 0;
  #size = 0;

  /** `buffer`: one a member no longer needs (its object was stored), to write into instead of a new one. */
  constructor(level: number, buffer?: Buffer) {
    this.#level = level;
    this.#buffer = withRoom(buffer, 0, HEADER_LENGTH + TRAILER_LENGTH);
    this.#length = HEADER_LENGTH;
  }

  /** Bytes written so far (without the trailer). */
  get length(): number {
    return this.#length;
  }

  /** The buffer this member writes into: for the next member, once this one's object is stored. */
  get buffer(): Buffer {
    return this.#buffer;
  }

  /** Compresses `bytes`; they may be reused as soon as this returns. */
  add(bytes: Buffer): void {
    if (bytes.length === 0) return;
    // One output chunk for a usual page (2 MB of events deflate to about 230 KB), so zlib does not join
    // chunks into a fresh buffer before it is copied here.
    const part = deflateRawSync(bytes, {
      level: this.#level,
      finishFlush: constants.Z_SYNC_FLUSH,
      chunkSize: CHUNK_SIZE,
    });
    this.#room(part.length);
    part.copy(this.#buffer, this.#length);
    this.#length += part.length;
    this.#crc = crc32(bytes, this.#crc);
    this.#size += bytes.length;
  }

  /**
   * The whole member: header, the pages' deflate blocks, an empty final block, CRC-32 and size. A view
   * of this member's buffer, valid until the buffer is handed to another member.
   */
  finish(): Buffer {
    this.#room(TRAILER_LENGTH);
    const buffer = this.#buffer;
    buffer.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extraFlags(this.#level), OS_UNIX], 0);
    let at = this.#length;
    at += FINAL_BLOCK.copy(buffer, at);
    at = buffer.writeUInt32LE(this.#crc >>> 0, at);
    // ISIZE is the input's length modulo 2^32.
    at = buffer.writeUInt32LE(this.#size % 2 ** 32, at);
    return buffer.subarray(0, at);
  }

  /** Room for `more` bytes after what is written. */
  #room(more: number): void {
    this.#buffer = withRoom(this.#buffer, this.#length, this.#length + more);
  }
}

const HEADER_LENGTH = 10;
/** A final fixed-Huffman block holding only its end code: what zlib writes to end an empty stream. */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);
const TRAILER_LENGTH = FINAL_BLOCK.length + 8;
const CHUNK_SIZE = 256 * 1024;
/** zlib's gzip header says Unix; kept so objects look as they did when zlib wrote the whole member. */
const OS_UNIX = 3;

/** XFL as zlib sets it: 2 for its slowest level, 4 for its fastest. */
function extraFlags(level: number): number {
  if (level === 9) return 2;
  if (level === 1) return 4;
  return 0;
}
