import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { batchFromNdjson } from '../../core/event-batch.js';
import { silentLogger } from '../../telemetry/logger.js';
import { FileSink } from './file-sink.js';

async function sinkIn(dir?: string) {
  const d = dir ?? (await mkdtemp(join(tmpdir(), 'oktail-file-')));
  const path = join(d, 'out', 'okta.ndjson');
  return {
    dir: d,
    path,
    sink: new FileSink({ name: 'archive', inputs: ['okta'], path, log: silentLogger() }),
  };
}

const batch = (text: string) => batchFromNdjson('okta', 'acme.okta.com', Buffer.from(text));

describe('FileSink', () => {
  it('appends batches and reports its length for the checkpoint', async () => {
    const { sink, path } = await sinkIn();
    await sink.open(undefined);
    expect(await sink.write(batch('{"a":1}\n'))).toEqual({ kind: 'ok' });
    expect(await sink.write(batch('{"b":2}\n'))).toEqual({ kind: 'ok' });
    expect(sink.checkpoint()).toEqual({ path, length: 16 });
    await sink.close();
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n{"b":2}\n');
  });

  it('cuts off bytes written after the last checkpoint when it opens', async () => {
    const { sink, path } = await sinkIn();
    await sink.open(undefined);
    await sink.write(batch('{"a":1}\n'));
    const committed = sink.checkpoint();
    await sink.write(batch('{"uncommitted":true}\n'));
    await sink.close();

    const reopened = new FileSink({ name: 'archive', inputs: ['okta'], path, log: silentLogger() });
    await reopened.open(committed);
    await reopened.write(batch('{"b":2}\n'));
    await reopened.close();
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n{"b":2}\n');
  });

  it('keeps an existing file when no checkpoint names it', async () => {
    const { sink, path, dir } = await sinkIn();
    await sink.open(undefined);
    await sink.write(batch('{"old":1}\n'));
    await sink.close();
    const again = (await sinkIn(dir)).sink;
    await again.open({ path: '/elsewhere.ndjson', length: 0 });
    await again.write(batch('{"new":1}\n'));
    await again.close();
    expect(await readFile(path, 'utf8')).toBe('{"old":1}\n{"new":1}\n');
  });

  it('appends at the end of a file that shrank outside oktail', async () => {
    const { sink, path } = await sinkIn();
    await sink.open(undefined);
    await sink.write(batch('{"a":1}\n'));
    await sink.close();
    await writeFile(path, '');
    const again = new FileSink({ name: 'archive', inputs: ['okta'], path, log: silentLogger() });
    await again.open({ path, length: 8 });
    expect(again.checkpoint()).toEqual({ path, length: 0 });
    await again.close();
  });

  it('asks for a retry when the disk is full', async () => {
    // /dev/full answers every write with ENOSPC, like a full disk.
    const sink = new FileSink({ name: 'full', inputs: ['okta'], path: '/dev/full', log: silentLogger() });
    await sink.open(undefined);
    const result = await sink.write(batch('{"a":1}\n'));
    expect(result).toMatchObject({ kind: 'retry', error: { code: 'SINK_WRITE_FAILED' } });
    expect(result.kind === 'retry' && result.error.message).toMatch(/ENOSPC/);
    expect(sink.checkpoint()).toEqual({ path: '/dev/full', length: 0 });
    await sink.close();
  });

  it('answers fatal when written after close', async () => {
    const { sink } = await sinkIn();
    await sink.open(undefined);
    await sink.close();
    expect((await sink.write(batch('{"a":1}\n'))).kind).toBe('fatal');
  });
});
