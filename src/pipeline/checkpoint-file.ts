import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { emptyCheckpoint, type Checkpoint, type CheckpointStore } from '../core/checkpoint.js';
import { OktailError } from '../core/errors.js';
import { syncDir } from '../core/fs-sync.js';

export const STATE_FILE = 'state.json';

/**
 * The checkpoint as one JSON file, replaced atomically: write a temp file, fsync it, rename it over the
 * old one, fsync the directory. A crash at any instant leaves either the old or the new checkpoint,
 * never a mix, and the file sink offsets in it always match the cursors beside them.
 */
export class FileCheckpointStore implements CheckpointStore {
  readonly path: string;
  readonly #dir: string;

  constructor(dataDir: string) {
    this.#dir = dataDir;
    this.path = join(dataDir, STATE_FILE);
  }

  async load(): Promise<Checkpoint> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyCheckpoint();
      throw new OktailError(
        'STATE_CORRUPT',
        `Cannot read the checkpoint ${this.path}: ${(err as Error).message}`,
        false,
        {
          cause: err,
        },
      );
    }
    return parseCheckpoint(text, this.path);
  }

  async commit(checkpoint: Checkpoint): Promise<void> {
    const tmp = `${this.path}.tmp`;
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(JSON.stringify(checkpoint, null, 2) + '\n');
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.path);
    await syncDir(this.#dir);
  }
}

export function parseCheckpoint(text: string, where: string): Checkpoint {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new OktailError(
      'STATE_CORRUPT',
      `The checkpoint ${where} is not valid JSON; restore it from a backup or remove it to start from start_from`,
      false,
      { cause: err },
    );
  }
  const cp = parsed as Partial<Checkpoint> | null;
  if (cp === null || typeof cp !== 'object' || cp.version !== 1) {
    throw new OktailError(
      'STATE_CORRUPT',
      `The checkpoint ${where} has an unknown format (expected "version": 1); it was written by another version of oktail`,
    );
  }
  if (
    typeof cp.sources !== 'object' ||
    cp.sources === null ||
    typeof cp.sinks !== 'object' ||
    cp.sinks === null
  ) {
    throw new OktailError('STATE_CORRUPT', `The checkpoint ${where} lacks "sources" or "sinks"`);
  }
  return cp as Checkpoint;
}
