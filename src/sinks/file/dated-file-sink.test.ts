import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { batchFromNdjson } from '../../core/event-batch.js';
import { silentLogger } from '../../telemetry/logger.js';
import { DatedFileSink, parsePublished } from './dated-file-sink.js';
import { FileSinkSchema, fileSink } from './registration.js';
import { FileSink } from './file-sink.js';

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'oktail-dated-'));
  const template = join(dir, 'out', 'okta-%Y-%m-%d.ndjson');
  const dataDir = join(dir, 'data');
  const make = (now?: () => Date) =>
    new DatedFileSink({ name: 'archive', inputs: ['okta'], template, dataDir, log: silentLogger(), now });
  const day = (d: string) => join(dir, 'out', `okta-${d}.ndjson`);
  return { dir, template, dataDir, make, day };
}

const line = (uuid: string, published: string | null) =>
  published === null ? `{"uuid":"${uuid}"}` : `{"uuid":"${uuid}","published":"${published}"}`;
const page = (...events: [string, string | null][]) =>
  batchFromNdjson('okta', 'acme.okta.com', Buffer.from(events.map(([u, p]) => line(u, p) + '\n').join('')));
const text = (path: string) => readFile(path, 'utf8').catch(() => null);
const uuids = async (path: string) =>
  ((await text(path)) ?? '')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { uuid: string }).uuid);

describe('DatedFileSink', () => {
  it('splits a page spanning midnight across the two days, each file with its committed length', async () => {
    const { make, day } = await setup();
    const sink = make();
    await sink.open(undefined);
    const result = await sink.write(
      page(
        ['a', '2026-03-04T23:59:59.000Z'],
        ['b', '2026-03-05T00:00:00.000Z'],
        ['c', '2026-03-05T00:00:01.000Z'],
      ),
    );
    expect(result).toEqual({ kind: 'ok' });
    expect(await uuids(day('2026-03-04'))).toEqual(['a']);
    expect(await uuids(day('2026-03-05'))).toEqual(['b', 'c']);
    const cp = sink.checkpoint() as { files: Record<string, number>; current: string; generation: number };
    expect(cp.files).toEqual({
      [day('2026-03-04')]: line('a', '2026-03-04T23:59:59.000Z').length + 1,
      [day('2026-03-05')]: (await stat(day('2026-03-05'))).size,
    });
    expect(cp.current).toBe(day('2026-03-05'));
    expect(cp.generation).toBe(1);

    // The next page only reaches the later day: the earlier day's final length was committed with the
    // previous checkpoint, so it leaves the checkpoint.
    await sink.write(page(['d', '2026-03-05T01:00:00.000Z']));
    expect(Object.keys((sink.checkpoint() as { files: object }).files)).toEqual([day('2026-03-05')]);
    await sink.close();
  });

  it('fills %H and the other fields from published in UTC', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oktail-dated-'));
    const template = join(dir, '%Y', '%j', 'h%H.ndjson');
    const sink = new DatedFileSink({
      name: 'hourly',
      inputs: ['okta'],
      template,
      dataDir: join(dir, 'data'),
      log: silentLogger(),
    });
    await sink.open(undefined);
    await sink.write(
      page(
        ['a', '2026-12-31T22:59:59.999+00:00'],
        ['b', '2026-12-31T23:00:00.000Z'],
        ['c', '2027-01-01T00:30:00+01:00'],
      ),
    );
    await sink.close();
    expect(await uuids(join(dir, '2026', '365', 'h22.ndjson'))).toEqual(['a']);
    // 00:30 at +01:00 is 23:30 UTC on the 31st.
    expect(await uuids(join(dir, '2026', '365', 'h23.ndjson'))).toEqual(['b', 'c']);
  });

  it('removes a new day file and cuts the old one when a crash came before the commit', async () => {
    const { make, day, dataDir } = await setup();
    const sink = make();
    await sink.open(undefined);
    await sink.write(page(['a', '2026-03-04T22:00:00.000Z']));
    const committed = sink.checkpoint();
    // Written and synced, but the process dies before the pipeline commits the checkpoint.
    await sink.write(page(['b', '2026-03-04T23:00:00.000Z'], ['c', '2026-03-05T00:10:00.000Z']));
    await sink.close();
    expect(await uuids(day('2026-03-05'))).toEqual(['c']);
    expect(await readdir(dataDir)).toContain('file-sink-archive.journal');

    const again = make();
    await again.open(committed);
    expect(await uuids(day('2026-03-04'))).toEqual(['a']);
    expect(await text(day('2026-03-05'))).toBeNull();
    expect(await readdir(dataDir)).not.toContain('file-sink-archive.journal');
    // The source fetches the page again from its cursor.
    await again.write(page(['b', '2026-03-04T23:00:00.000Z'], ['c', '2026-03-05T00:10:00.000Z']));
    await again.close();
    expect(await uuids(day('2026-03-04'))).toEqual(['a', 'b']);
    expect(await uuids(day('2026-03-05'))).toEqual(['c']);
  });

  it('removes a torn new file, and a second start before the next commit changes nothing', async () => {
    const { make, day } = await setup();
    const sink = make();
    await sink.open(undefined);
    await sink.write(page(['a', '2026-03-04T22:00:00.000Z']));
    const committed = sink.checkpoint();
    await sink.write(page(['b', '2026-03-04T23:00:00.000Z'], ['c', '2026-03-05T00:10:00.000Z']));
    await sink.close();
    // A torn line at the end of the new file, as a crash in the middle of its write leaves.
    await writeFile(day('2026-03-05'), '{"uuid":"c","publ', { flag: 'a' });
    for (let i = 0; i < 2; i++) {
      const again = make();
      await again.open(committed);
      expect(again.checkpoint()).toEqual(committed);
      await again.close();
      expect(await uuids(day('2026-03-04'))).toEqual(['a']);
      expect(await text(day('2026-03-05'))).toBeNull();
    }
  });

  it('takes a late event back out of an earlier day the checkpoint no longer names', async () => {
    const { make, day } = await setup();
    const sink = make();
    await sink.open(undefined);
    await sink.write(page(['a', '2026-03-04T23:00:00.000Z'], ['b', '2026-03-05T00:10:00.000Z']));
    await sink.write(page(['c', '2026-03-05T00:20:00.000Z']));
    const committed = sink.checkpoint() as { files: Record<string, number> };
    expect(Object.keys(committed.files)).toEqual([day('2026-03-05')]);
    // A late event of the 4th, then a crash before the commit.
    await sink.write(page(['late', '2026-03-04T23:59:00.000Z'], ['d', '2026-03-05T00:30:00.000Z']));
    await sink.close();
    expect(await uuids(day('2026-03-04'))).toEqual(['a', 'late']);

    const again = make();
    await again.open(committed);
    expect(await uuids(day('2026-03-04'))).toEqual(['a']);
    expect(await uuids(day('2026-03-05'))).toEqual(['b', 'c']);
    await again.write(page(['late', '2026-03-04T23:59:00.000Z'], ['d', '2026-03-05T00:30:00.000Z']));
    await again.close();
    expect(await uuids(day('2026-03-04'))).toEqual(['a', 'late']);
    expect(await uuids(day('2026-03-05'))).toEqual(['b', 'c', 'd']);
  });

  it('never applies the journal of a write that was committed', async () => {
    const { make, day } = await setup();
    const sink = make();
    await sink.open(undefined);
    await sink.write(page(['a', '2026-03-04T23:00:00.000Z'], ['b', '2026-03-05T00:10:00.000Z']));
    // The commit after that write happened; then a crash before any other write.
    const committed = sink.checkpoint();
    await sink.close();
    const again = make();
    await again.open(committed);
    expect(await uuids(day('2026-03-04'))).toEqual(['a']);
    expect(await uuids(day('2026-03-05'))).toEqual(['b']);
    await again.close();
  });

  it('ignores a journal when the state no longer has this sink (state.json removed), keeping existing files', async () => {
    const { make, day } = await setup();
    const sink = make();
    await sink.open(undefined);
    await sink.write(page(['a', '2026-03-04T23:00:00.000Z']));
    await sink.close();
    const again = make();
    await again.open(undefined);
    await again.write(page(['b', '2026-03-04T23:30:00.000Z']));
    await again.close();
    expect(await uuids(day('2026-03-04'))).toEqual(['a', 'b']);
  });

  it('reads the single-file checkpoint shape and guards that file', async () => {
    const { make, dir } = await setup();
    const old = join(dir, 'old.ndjson');
    await writeFile(old, '{"uuid":"a"}\n{"uuid":"uncommitted"}\n');
    const sink = make();
    await sink.open({ path: old, length: 13 });
    expect(await text(old)).toBe('{"uuid":"a"}\n');
    expect((sink.checkpoint() as { files: object }).files).toEqual({ [old]: 13 });
    await sink.write(page(['b', '2026-03-04T23:30:00.000Z']));
    // The old file is not a dated file: once the first page is committed it is no longer guarded.
    expect(Object.keys((sink.checkpoint() as { files: object }).files)).not.toContain(old);
    await sink.close();
  });

  it('places events without a usable published beside their neighbours in the page', async () => {
    const { make, day } = await setup();
    const clock = () => new Date('2030-01-02T03:04:05Z');
    const sink = make(clock);
    await sink.open(undefined);
    // Nothing written yet and no date in the page: the clock decides.
    await sink.write(page(['x', null]));
    expect(await uuids(day('2030-01-02'))).toEqual(['x']);
    await sink.write(
      page(
        ['lead', 'not a date'],
        ['a', '2026-03-04T23:59:59.000Z'],
        ['odd', null],
        ['b', '2026-03-05T00:00:00.000Z'],
        ['odd2', '2026-02-30'],
      ),
    );
    expect(await uuids(day('2026-03-04'))).toEqual(['lead', 'a', 'odd']);
    // V8 reads 2026-02-30 as March 2nd; what matters is that it is read the same way on a replay.
    expect(await uuids(day('2026-03-05'))).toEqual(['b']);
    expect(await uuids(day('2026-03-02'))).toEqual(['odd2']);
    // A page with no date at all goes to the current file: the newest day read from a published (the
    // clock's day does not count as one).
    await sink.write(page(['y', null]));
    expect(await uuids(day('2026-03-05'))).toEqual(['b', 'y']);
    await sink.close();
  });

  it('leaves nothing of a page that failed half way, and a retry writes it once', async () => {
    const { make, day } = await setup();
    const sink = make();
    await sink.open(undefined);
    await sink.write(page(['a', '2026-03-04T22:00:00.000Z']));
    // The second day's name is taken by a directory: opening it fails after the first day was written.
    await mkdir(day('2026-03-05'), { recursive: true });
    const batch = page(['b', '2026-03-04T23:00:00.000Z'], ['c', '2026-03-05T00:10:00.000Z']);
    const failed = await sink.write(batch);
    expect(failed).toMatchObject({ kind: 'retry', error: { code: 'SINK_WRITE_FAILED' } });
    expect(await uuids(day('2026-03-04'))).toEqual(['a']);
    expect((sink.checkpoint() as { generation: number }).generation).toBe(1);
    await rm(day('2026-03-05'), { recursive: true });
    expect(await sink.write(batch)).toEqual({ kind: 'ok' });
    await sink.close();
    expect(await uuids(day('2026-03-04'))).toEqual(['a', 'b']);
    expect(await uuids(day('2026-03-05'))).toEqual(['c']);
  });

  it('ends in the same files after a crash after any write of a random sequence', async () => {
    // The crash instant after a page is written and before its commit, at every page of a run whose
    // pages cross days, run late events and days without events: the files always end exactly once.
    const { make, dir } = await setup();
    const pages: [string, string][][] = [];
    let t = Date.UTC(2026, 2, 3, 20);
    let n = 0;
    for (let p = 0; p < 14; p++) {
      const events: [string, string][] = [];
      for (let i = 0; i < 5; i++) {
        t += (p % 5 === 2 ? 30 : 1) * 3600_000 * ((i * 7 + p) % 3);
        const late = (n * 13) % 11 === 0 ? 26 * 3600_000 : 0;
        events.push([`e${n++}`, new Date(t - late).toISOString()]);
      }
      pages.push(events);
    }
    const expected = new Map<string, string[]>();
    for (const events of pages) {
      for (const [u, p] of events) {
        const f = join(dir, 'out', `okta-${p.slice(0, 10)}.ndjson`);
        expected.set(f, [...(expected.get(f) ?? []), u]);
      }
    }
    for (let crashAt = 0; crashAt < pages.length; crashAt++) {
      await rm(join(dir, 'out'), { recursive: true, force: true });
      await rm(join(dir, 'data'), { recursive: true, force: true });
      let sink = make();
      await sink.open(undefined);
      let committed = sink.checkpoint();
      for (let p = 0; p < pages.length; p++) {
        expect(await sink.write(page(...pages[p]!))).toEqual({ kind: 'ok' });
        if (p === crashAt) {
          await sink.close();
          sink = make();
          await sink.open(committed);
          expect(await sink.write(page(...pages[p]!))).toEqual({ kind: 'ok' });
        }
        committed = sink.checkpoint();
      }
      await sink.close();
      for (const [file, want] of expected)
        expect(await uuids(file), `${file}, crash at ${crashAt}`).toEqual(want);
      expect((await readdir(join(dir, 'out'))).length).toBe(expected.size);
    }
  });
});

describe('parsePublished', () => {
  it('reads ISO 8601 times, a missing zone as UTC, and nothing else', () => {
    expect(parsePublished('2026-03-04T05:06:07.089Z')).toBe(Date.UTC(2026, 2, 4, 5, 6, 7, 89));
    expect(parsePublished('2026-03-04T05:06:07')).toBe(Date.UTC(2026, 2, 4, 5, 6, 7));
    expect(parsePublished('2026-03-04')).toBe(Date.UTC(2026, 2, 4));
    expect(parsePublished('March 4, 2026')).toBeNaN();
    expect(parsePublished('')).toBeNaN();
  });
});

describe('file sink registration', () => {
  const context = {
    log: silentLogger(),
    telemetry: undefined as never,
    dataDir: '/tmp/d',
    configDir: '/tmp',
  };

  it('takes a path without time fields literally, as before', async () => {
    const config = FileSinkSchema.parse({ type: 'file', inputs: ['okta'], path: '/tmp/50%off.ndjson' });
    const sink = await fileSink.create('archive', config, context);
    expect(sink).toBeInstanceOf(FileSink);
    expect((sink as FileSink).path).toBe('/tmp/50%off.ndjson');
  });

  it('dates a path with time fields and rejects unknown fields in it', async () => {
    const config = FileSinkSchema.parse({
      type: 'file',
      inputs: ['okta'],
      path: '/tmp/okta-%Y-%m-%d.ndjson',
    });
    expect(await fileSink.create('archive', config, context)).toBeInstanceOf(DatedFileSink);
    const bad = FileSinkSchema.safeParse({ type: 'file', inputs: ['okta'], path: '/tmp/%Y-%q.ndjson' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]).toMatchObject({ path: ['path'], message: expect.stringMatching(/%q/) });
  });
});
