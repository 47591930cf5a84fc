import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, gunzipSync, inflateRawSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { GzipMember } from './gzip-member.js';

/** Pages of NDJSON that repeat across pages, as Okta's events do. */
function pages(count: number, eventsPerPage: number): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < count; p++) {
    const lines: string[] = [];
    for (let i = 0; i < eventsPerPage; i++) {
      const n = p * eventsPerPage + i;
      lines.push(
        JSON.stringify({
          uuid: `uuid-${n}`,
          published: `2026-03-04T05:06:${String(n % 60).padStart(2, '0')}.000Z`,
          eventType: n % 3 ? 'user.session.start' : 'user.authentication.sso',
          actor: { id: `00u${n % 97}`, displayName: `User ${n % 97}` },
          _okta_event_type: 'systemLog',
        }) + '\n',
      );
    }
    out.push(Buffer.from(lines.join('')));
  }
  return out;
}

describe('GzipMember', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oktail-gzip-member-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('joins pages compressed one by one into a single member that ends with their CRC-32 and size', () => {
    const input = pages(5, 400);
    const member = new GzipMember(3);
    for (const page of input) member.add(page);
    const gz = member.finish();
    const all = Buffer.concat(input);

    expect(gunzipSync(gz).equals(all)).toBe(true);
    expect([...gz.subarray(0, 4)]).toEqual([0x1f, 0x8b, 8, 0]);
    // One member: the deflate stream between the header and the trailer holds every page and ends
    // there, and the trailer covers all of them.
    expect(inflateRawSync(gz.subarray(10, gz.length - 8)).equals(all)).toBe(true);
    expect(gz.readUInt32LE(gz.length - 8)).toBe(crc32(all) >>> 0);
    expect(gz.readUInt32LE(gz.length - 4)).toBe(all.length);
    expect(gz.length).toBeLessThan(all.length / 4);
  });

  it('is read whole by the gzip tool', () => {
    const input = pages(3, 300);
    const member = new GzipMember(1);
    for (const page of input) member.add(page);
    const file = join(dir, 'object.ndjson.gz');
    writeFileSync(file, member.finish());
    execFileSync('gzip', ['-t', file]);
    const lines = execFileSync('gzip', ['-dc', file], { maxBuffer: 64 << 20 })
      .toString()
      .trimEnd()
      .split('\n');
    expect(lines).toHaveLength(900);
    expect(JSON.parse(lines[899] as string).uuid).toBe('uuid-899');
  });

  it('keeps nothing of a page it was given: the buffer may be reused right after', () => {
    const [first, second] = pages(2, 200) as [Buffer, Buffer];
    const reused = Buffer.alloc(Math.max(first.length, second.length));
    const member = new GzipMember(3);
    first.copy(reused);
    member.add(reused.subarray(0, first.length));
    reused.fill(0x20);
    second.copy(reused);
    member.add(reused.subarray(0, second.length));
    reused.fill(0);
    expect(gunzipSync(member.finish()).equals(Buffer.concat([first, second]))).toBe(true);
  });

  it('grows its buffer past its first size, and a later member reuses it', () => {
    // Random bytes barely compress: 3 MB of them pass the first 1 MB buffer.
    const noise = [0, 1, 2].map((i) => {
      const page = Buffer.alloc(1 << 20);
      let x = 12345 + i;
      for (let k = 0; k < page.length; k++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        page[k] = x >>> 24;
      }
      return page;
    });
    const first = new GzipMember(3);
    for (const page of noise) first.add(page);
    const firstBody = first.finish();
    expect(first.buffer.length).toBeGreaterThan(3 << 20);
    expect(gunzipSync(firstBody).equals(Buffer.concat(noise))).toBe(true);

    const input = pages(2, 300);
    const second = new GzipMember(3, first.buffer);
    for (const page of input) second.add(page);
    const body = second.finish();
    expect(second.buffer).toBe(first.buffer);
    expect(gunzipSync(body).equals(Buffer.concat(input))).toBe(true);
  });

  it('can be finished again after more pages', () => {
    const [a, b] = pages(2, 100) as [Buffer, Buffer];
    const member = new GzipMember(3);
    member.add(a);
    expect(gunzipSync(member.finish()).equals(a)).toBe(true);
    member.add(b);
    expect(gunzipSync(member.finish()).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it('makes a valid empty member when given nothing', () => {
    const member = new GzipMember(3);
    member.add(Buffer.alloc(0));
    expect(gunzipSync(member.finish()).length).toBe(0);
  });
});
