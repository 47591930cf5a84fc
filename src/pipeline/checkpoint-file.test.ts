import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileCheckpointStore } from './checkpoint-file.js';

async function tempDir() {
  return mkdtemp(join(tmpdir(), 'oktail-cp-'));
}

describe('FileCheckpointStore', () => {
  it('starts empty when nothing was committed', async () => {
    const store = new FileCheckpointStore(await tempDir());
    expect(await store.load()).toEqual({ version: 1, sources: {}, sinks: {} });
  });

  it('round-trips a commit through a file readable only by its owner', async () => {
    const dir = await tempDir();
    const store = new FileCheckpointStore(dir);
    const cp = {
      version: 1 as const,
      sources: {
        okta: { domain: 'a.okta.com', state: { next: 'https://a.okta.com/x' }, committed_at: 'now' },
      },
      sinks: { archive: { path: '/tmp/x', length: 42 } },
    };
    await store.commit(cp);
    expect(await new FileCheckpointStore(dir).load()).toEqual(cp);
    expect((await stat(store.path)).mode & 0o777).toBe(0o600);
    await expect(readFile(`${store.path}.tmp`)).rejects.toThrow();
  });

  it('refuses a corrupt checkpoint with a clear error instead of starting over', async () => {
    const dir = await tempDir();
    const store = new FileCheckpointStore(dir);
    await writeFile(store.path, '{"version":1,');
    await expect(store.load()).rejects.toMatchObject({ code: 'STATE_CORRUPT' });
  });

  it('refuses a checkpoint of an unknown version', async () => {
    const dir = await tempDir();
    const store = new FileCheckpointStore(dir);
    await writeFile(store.path, '{"version":2,"sources":{},"sinks":{}}');
    await expect(store.load()).rejects.toThrow(/unknown format/);
  });
});
