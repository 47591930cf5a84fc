import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname } from 'node:path';
import type { EventBatch, Sink, SinkCheckpoint, WriteResult } from '../../core/sink.js';
import { OktailError } from '../../core/errors.js';
import { syncDir } from '../../core/fs-sync.js';
import type { Logger } from '../../telemetry/logger.js';

export interface FileSinkOptions {
  name: string;
  inputs: readonly string[];
  path: string;
  log: Logger;
}

/**
 * Exactly-once NDJSON file. Every batch is written at the committed end of the file and fdatasync'ed;
 * the checkpoint records the file's length in the same atomic commit as the sources' cursors. On start
 * anything past the recorded length was written after the last commit (a crash between write and
 * commit) and is cut off, because the source will fetch those events again from its cursor.
 */
export class FileSink implements Sink {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly kind = 'positional' as const;
  readonly path: string;
  readonly #log: Logger;
  #file: FileHandle | null = null;
  #length = 0;

  constructor(options: FileSinkOptions) {
    this.name = options.name;
    this.inputs = options.inputs;
    this.path = options.path;
    this.#log = options.log;
  }

  async open(committed: SinkCheckpoint | undefined, _signal?: AbortSignal): Promise<void> {
    if (this.#file) return;
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true });
    let existed = true;
    try {
      await stat(this.path);
    } catch {
      existed = false;
    }
    // Positional writes need a descriptor without O_APPEND (Linux ignores the position with it).
    this.#file = await open(this.path, constants.O_RDWR | constants.O_CREAT, 0o640);
    if (!existed) await syncDir(dir);
    const size = (await this.#file.stat()).size;
    const recorded = committed && committed.path === this.path ? committed.length : undefined;
    if (typeof recorded === 'number' && size > recorded) {
      await this.#file.truncate(recorded);
      await this.#file.datasync();
      this.#log.warn(
        { sink: this.name, path: this.path, removed_bytes: size - recorded },
        'Removed bytes written after the last checkpoint; their events will be fetched again.',
      );
      this.#length = recorded;
    } else {
      if (typeof recorded === 'number' && size < recorded) {
        // Rotated or truncated by someone else: the committed data is no longer ours to guard.
        this.#log.warn(
          { sink: this.name, path: this.path, size, committed_length: recorded },
          'The file is shorter than the checkpoint says (rotated or truncated outside oktail); appending at its end.',
        );
      }
      this.#length = size;
    }
  }

  async write(batch: EventBatch, _signal?: AbortSignal): Promise<WriteResult> {
    const file = this.#file;
    if (!file)
      return {
        kind: 'fatal',
        error: new OktailError('SINK_WRITE_FAILED', `File sink ${this.name} is not open`),
      };
    const data = batch.data;
    try {
      let offset = 0;
      while (offset < data.length) {
        const { bytesWritten } = await file.write(data, offset, data.length - offset, this.#length + offset);
        offset += bytesWritten;
      }
      await file.datasync();
      this.#length += data.length;
      return { kind: 'ok' };
    } catch (err) {
      // Leave nothing of the failed batch behind, so a retry cannot duplicate its first half.
      try {
        await file.truncate(this.#length);
      } catch {
        // The next open truncates to the committed length anyway.
      }
      const error = new OktailError(
        'SINK_WRITE_FAILED',
        `Cannot write to ${this.path}: ${(err as Error).message}`,
        true,
        { cause: err },
      );
      return { kind: 'retry', afterMs: 1000, error };
    }
  }

  checkpoint(): SinkCheckpoint {
    return { path: this.path, length: this.#length };
  }

  async close(): Promise<void> {
    const file = this.#file;
    this.#file = null;
    if (file) await file.close();
  }
}
