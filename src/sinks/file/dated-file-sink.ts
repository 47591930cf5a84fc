import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { EventBatch, Sink, SinkCheckpoint, WriteResult } from '../../core/sink.js';
import { OktailError } from '../../core/errors.js';
import { syncDir } from '../../core/fs-sync.js';
import type { JsonObject } from '../../core/json.js';
import type { Logger } from '../../telemetry/logger.js';
import { formatStrftime } from '../shared/strftime.js';

export interface DatedFileSinkOptions {
  name: string;
  inputs: readonly string[];
  /** The path with strftime fields, filled from each event's `published` (UTC). */
  template: string;
  /** The data directory: the sink keeps its write-ahead journal there, beside the checkpoint. */
  dataDir: string;
  log: Logger;
  /** The clock, used only for a page none of whose events has a usable `published` (tests pin it). */
  now?: () => Date;
}

/** What the sink records in the checkpoint. */
interface DatedPosition {
  /** Names the life of this sink's checkpoint entry, so a journal left by another state is never applied. */
  epoch: string;
  /** Count of successful writes; a journal applies only to the write after the committed one. */
  generation: number;
  /** The file of the newest `published` written so far: it stays open between pages. */
  current: string | null;
  newest: string | null;
  /** Committed length of each file the last write touched, and of the current file. */
  files: Record<string, number>;
}

/** Files a write touches that the committed checkpoint does not name, with their length before it. */
interface Journal {
  epoch: string;
  generation: number;
  /** null: the file did not exist. */
  files: Record<string, number | null>;
}

interface Group {
  chunks: Buffer[];
  bytes: number;
  newestMs: number;
}

/**
 * Exactly-once NDJSON files named by each event's `published` (UTC), e.g. one file per day.
 *
 * A page is split by file; each file's part is written at that file's committed end and fdatasync'ed,
 * and the checkpoint (committed by the pipeline right after the write, in the same atomic document as
 * the sources' cursors) records every touched file's new length. On open, each file the checkpoint names
 * is cut back to its recorded length.
 *
 * A write can also touch a file the committed checkpoint does not name: a new day's file, or an earlier
 * day's file that got a late event (Okta's polling returns events out of `published` order). A crash
 * after such a write but before its commit would leave bytes no checkpoint accounts for, so before
 * touching such a file the sink durably records its current length (or its absence) in a small journal
 * in the data directory. The journal carries the generation of the write it belongs to: on open it is
 * applied only if the checkpoint's generation is older (that write was never committed); once the
 * checkpoint holds that generation the journal is stale and ignored.
 *
 * Crash instants, for a write that touches named file A and unnamed file B:
 * - before the journal is in place (it is replaced by rename): nothing was written; an older journal is
 *   stale by generation;
 * - after the journal, during or after the writes, before the commit: A is cut to its committed length
 *   from the checkpoint, B to its journaled length (removed if it did not exist);
 * - after the commit: the checkpoint names A and B with their new lengths; the journal is stale.
 *
 * Why the checkpoint can drop files and stay small: it names only the files the last write touched plus
 * the current one. A file dropped from it had its final length committed by the commit that followed the
 * write which last touched it, and nothing has been written to it since. A replay re-sends only events
 * after the committed cursors, and the events in a dropped file were all committed, so a replay never
 * brings them again; a genuinely new (late) event for that file goes through the journal like a new
 * file, so even a crash right after appending it cannot leave it there twice.
 *
 * Only the current file (the newest `published`) stays open; a file of an earlier day is closed at the
 * end of the write that touched it, so a day's file is closed once a later day's file is written.
 */
export class DatedFileSink implements Sink {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly kind = 'positional' as const;
  readonly template: string;
  readonly journalPath: string;
  readonly #dataDir: string;
  readonly #log: Logger;
  readonly #now: () => Date;
  #opened = false;
  #closed = false;
  #epoch = '';
  #generation = 0;
  #current: string | null = null;
  #newestMs = Number.NEGATIVE_INFINITY;
  /** Committed lengths: what checkpoint() reports. */
  #files = new Map<string, number>();
  /** The journal of the write in progress (kept across its retries), null once a write succeeded. */
  #journal: Journal | null = null;
  /** A journal file exists on disk (possibly stale). */
  #journalOnDisk = false;
  #handles = new Map<string, FileHandle>();

  constructor(options: DatedFileSinkOptions) {
    this.name = options.name;
    this.inputs = options.inputs;
    this.template = options.template;
    this.#dataDir = options.dataDir;
    this.journalPath = join(options.dataDir, `file-sink-${encodeURIComponent(options.name)}.journal`);
    this.#log = options.log;
    this.#now = options.now ?? (() => new Date());
  }

  async open(committed: SinkCheckpoint | undefined, _signal?: AbortSignal): Promise<void> {
    if (this.#opened) return;
    this.#opened = true;
    const position = readPosition(committed);
    this.#epoch = position?.epoch ?? randomUUID();
    this.#generation = position?.generation ?? 0;
    this.#current = position?.current ?? null;
    this.#newestMs = position?.newest ? Date.parse(position.newest) : Number.NEGATIVE_INFINITY;
    if (Number.isNaN(this.#newestMs)) this.#newestMs = Number.NEGATIVE_INFINITY;
    for (const [path, length] of Object.entries(position?.files ?? {})) {
      this.#files.set(path, await this.#cutBack(path, length));
    }
    if (this.#current !== null && !this.#files.has(this.#current)) this.#current = null;

    const journal = await this.#readJournal();
    if (journal) {
      // Only a journal of the write right after the committed one, under this very checkpoint entry,
      // describes bytes no commit covers. Any other journal is left over from a committed write or from
      // a state that was reset or replaced: applying it would cut committed events.
      const applies =
        position?.epoch !== undefined &&
        journal.epoch === position.epoch &&
        journal.generation > position.generation;
      if (applies) {
        for (const [path, before] of Object.entries(journal.files)) {
          if (this.#files.has(path)) continue;
          await this.#undo(path, before);
        }
      }
      await unlink(this.journalPath).catch(() => undefined);
    }
  }

  /** Cuts a named file back to its committed length; answers the length to continue from. */
  async #cutBack(path: string, length: number): Promise<number> {
    const size = await sizeOf(path);
    if (size === null) return 0;
    if (size > length) {
      await cut(path, length);
      this.#log.warn(
        { sink: this.name, path, removed_bytes: size - length },
        'Removed bytes written after the last checkpoint; their events will be fetched again.',
      );
      return length;
    }
    if (size < length) {
      this.#log.warn(
        { sink: this.name, path, size, committed_length: length },
        'The file is shorter than the checkpoint says (rotated or truncated outside oktail); appending at its end.',
      );
    }
    return size;
  }

  /** Puts an unnamed file back as the journal found it before an uncommitted write. */
  async #undo(path: string, before: number | null): Promise<void> {
    const size = await sizeOf(path);
    if (size === null) return;
    if (before === null) {
      await unlink(path);
      await syncDir(dirname(path));
      this.#log.warn(
        { sink: this.name, path, removed_bytes: size },
        'Removed a file written after the last checkpoint; its events will be fetched again.',
      );
    } else if (size > before) {
      await cut(path, before);
      this.#log.warn(
        { sink: this.name, path, removed_bytes: size - before },
        'Removed bytes written after the last checkpoint; their events will be fetched again.',
      );
    }
  }

  async #readJournal(): Promise<Journal | null> {
    let text: string;
    try {
      text = await readFile(this.journalPath, 'utf8');
    } catch {
      return null;
    }
    this.#journalOnDisk = true;
    try {
      const j = JSON.parse(text) as Partial<Journal>;
      if (typeof j.epoch !== 'string' || typeof j.generation !== 'number' || typeof j.files !== 'object') {
        return null;
      }
      return j as Journal;
    } catch {
      // The journal is replaced by rename, so a torn one cannot exist; unreadable means not ours.
      return null;
    }
  }

  async #writeJournal(journal: Journal): Promise<void> {
    const tmp = `${this.journalPath}.tmp`;
    await mkdir(this.#dataDir, { recursive: true, mode: 0o700 });
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(JSON.stringify(journal) + '\n');
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.journalPath);
    await syncDir(this.#dataDir);
    this.#journalOnDisk = true;
  }

  async write(batch: EventBatch, _signal?: AbortSignal): Promise<WriteResult> {
    if (!this.#opened || this.#closed) {
      return {
        kind: 'fatal',
        error: new OktailError('SINK_WRITE_FAILED', `File sink ${this.name} is not open`),
      };
    }
    if (batch.count === 0) return { kind: 'ok' };
    const groups = this.#split(batch);
    const starts = new Map<string, number>();
    const touched: string[] = [];
    try {
      if (this.#journal === null && this.#journalOnDisk) {
        // The previous write succeeded and was committed right after it: its journal is stale. Removing
        // it is tidiness only (a stale journal is never applied), so the unlink need not be durable.
        await unlink(this.journalPath).catch(() => undefined);
        this.#journalOnDisk = false;
      }
      const unnamed = [...groups.keys()].filter((p) => !this.#files.has(p));
      if (unnamed.length > 0) {
        // A retry of a failed write keeps its journal: the lengths from before its first attempt count.
        const journal = this.#journal ?? {
          epoch: this.#epoch,
          generation: this.#generation + 1,
          files: {},
        };
        let added = false;
        for (const path of unnamed) {
          if (path in journal.files) continue;
          journal.files[path] = await sizeOf(path);
          added = true;
        }
        this.#journal = journal;
        if (added) await this.#writeJournal(journal);
      }
      for (const [path, group] of groups) {
        const start = this.#files.get(path) ?? this.#journal?.files[path] ?? 0;
        starts.set(path, start);
        touched.push(path);
        const handle = await this.#handle(path);
        const data = group.chunks.length === 1 ? group.chunks[0]! : Buffer.concat(group.chunks, group.bytes);
        let offset = 0;
        while (offset < data.length) {
          const { bytesWritten } = await handle.write(data, offset, data.length - offset, start + offset);
          offset += bytesWritten;
        }
        await handle.datasync();
      }
    } catch (err) {
      await this.#rollBack(touched, starts);
      const error = new OktailError(
        'SINK_WRITE_FAILED',
        `Cannot write to ${touched.at(-1) ?? this.template}: ${(err as Error).message}`,
        true,
        { cause: err },
      );
      return { kind: 'retry', afterMs: 1000, error };
    }

    this.#generation = this.#generation + 1;
    this.#journal = null;
    for (const [path, group] of groups) {
      if (group.newestMs > this.#newestMs) {
        this.#newestMs = group.newestMs;
        this.#current = path;
      }
    }
    const files = new Map<string, number>();
    for (const [path, group] of groups) files.set(path, starts.get(path)! + group.bytes);
    const current = this.#current;
    if (current !== null && !files.has(current)) files.set(current, this.#files.get(current) ?? 0);
    this.#files = files;
    for (const [path, handle] of this.#handles) {
      if (path === current) continue;
      this.#handles.delete(path);
      await handle.close().catch(() => undefined);
    }
    return { kind: 'ok' };
  }

  /** Leaves nothing of a failed write behind, so its retry cannot duplicate a part of it. */
  async #rollBack(touched: readonly string[], starts: ReadonlyMap<string, number>): Promise<void> {
    for (const path of touched) {
      const handle = this.#handles.get(path);
      try {
        if (this.#journal?.files[path] === null && !this.#files.has(path)) {
          this.#handles.delete(path);
          await handle?.close();
          await unlink(path);
        } else if (handle) {
          await handle.truncate(starts.get(path) ?? 0);
        }
      } catch {
        // The next open cuts back to the checkpoint and the journal anyway.
      }
    }
  }

  /** The open descriptor of a file, creating it (and its directories, durably) when needed. */
  async #handle(path: string): Promise<FileHandle> {
    const open_ = this.#handles.get(path);
    if (open_) return open_;
    const dir = dirname(path);
    const created = await mkdir(dir, { recursive: true });
    const existed = (await sizeOf(path)) !== null;
    // Positional writes need a descriptor without O_APPEND (Linux ignores the position with it).
    const handle = await open(path, constants.O_RDWR | constants.O_CREAT, 0o640);
    this.#handles.set(path, handle);
    if (!existed || created !== undefined) {
      // A new file (or directory) survives a crash only once every directory entry up the new chain is.
      const top = created === undefined ? dir : dirname(created);
      for (let d = dir; ; d = dirname(d)) {
        await syncDir(d);
        if (d === top || dirname(d) === d) break;
      }
    }
    return handle;
  }

  /**
   * Groups the page's lines by file, keeping their order within each file. An event whose `published`
   * is missing or unparsable goes with the nearest earlier event of the page that has one (for leading
   * events, the first later one), so it stays beside its neighbours in Okta's order; a page with no
   * usable `published` at all goes to the current file, or, before any, to the file of the current time.
   */
  #split(batch: EventBatch): Map<string, Group> {
    const n = batch.count;
    const published = batch.published;
    const ms = new Float64Array(n);
    let firstKnown = Number.NaN;
    for (let i = 0; i < n; i++) {
      const p = published[i];
      const t = p === null || p === undefined ? Number.NaN : parsePublished(p);
      ms[i] = t;
      if (Number.isNaN(firstKnown) && !Number.isNaN(t)) firstKnown = t;
    }
    const groups = new Map<string, Group>();
    const fallbackPath = Number.isNaN(firstKnown) ? this.#current : null;
    let previous = firstKnown;
    let lastSecond = Number.NaN;
    let lastPath = '';
    let runPath: string | null = null;
    let runStart = 0;
    let runEnd = 0;
    let runNewest = Number.NEGATIVE_INFINITY;
    const flush = () => {
      if (runPath === null) return;
      let group = groups.get(runPath);
      if (!group) {
        group = { chunks: [], bytes: 0, newestMs: Number.NEGATIVE_INFINITY };
        groups.set(runPath, group);
      }
      group.chunks.push(batch.data.subarray(runStart, runEnd));
      group.bytes += runEnd - runStart;
      if (runNewest > group.newestMs) group.newestMs = runNewest;
    };
    for (let i = 0; i < n; i++) {
      let t = ms[i]!;
      let known = true;
      if (Number.isNaN(t)) {
        known = false;
        t = Number.isNaN(previous) ? this.#now().getTime() : previous;
      } else previous = t;
      let path: string;
      if (!known && fallbackPath !== null) path = fallbackPath;
      else {
        // Every field is a whole second or coarser, so events of one second share a path.
        const second = Math.floor(t / 1000);
        if (second !== lastSecond) {
          lastSecond = second;
          lastPath = formatStrftime(this.template, new Date(t));
        }
        path = lastPath;
      }
      const start = batch.starts[i]!;
      const end = batch.ends[i]! + 1;
      if (path === runPath && start === runEnd) {
        runEnd = end;
      } else {
        flush();
        runPath = path;
        runStart = start;
        runEnd = end;
        runNewest = Number.NEGATIVE_INFINITY;
      }
      if (known && t > runNewest) runNewest = t;
    }
    flush();
    return groups;
  }

  checkpoint(): SinkCheckpoint {
    const position: DatedPosition = {
      epoch: this.#epoch,
      generation: this.#generation,
      current: this.#current,
      newest: Number.isFinite(this.#newestMs) ? new Date(this.#newestMs).toISOString() : null,
      files: Object.fromEntries(this.#files),
    };
    return position as unknown as JsonObject;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const handles = [...this.#handles.values()];
    this.#handles.clear();
    for (const handle of handles) await handle.close();
  }
}

/**
 * The recorded position, from this sink's shape or from the single-file sink's `{path, length}` (a config
 * that moved from a fixed path to a dated one: that file is then guarded like any named file).
 */
function readPosition(
  committed: SinkCheckpoint | undefined,
): (Omit<DatedPosition, 'epoch'> & { epoch: string | undefined }) | null {
  if (!committed) return null;
  const files: Record<string, number> = {};
  if (typeof committed.files === 'object' && committed.files !== null && !Array.isArray(committed.files)) {
    for (const [path, length] of Object.entries(committed.files)) {
      if (typeof length === 'number' && Number.isSafeInteger(length) && length >= 0) files[path] = length;
    }
    return {
      epoch: typeof committed.epoch === 'string' ? committed.epoch : undefined,
      generation: typeof committed.generation === 'number' ? committed.generation : 0,
      current: typeof committed.current === 'string' ? committed.current : null,
      newest: typeof committed.newest === 'string' ? committed.newest : null,
      files,
    };
  }
  if (typeof committed.path === 'string' && typeof committed.length === 'number') {
    files[committed.path] = committed.length;
    return { epoch: undefined, generation: 0, current: null, newest: null, files };
  }
  return null;
}

/**
 * Epoch ms of an ISO 8601 `published`, NaN when it is not one. A time without a zone counts as UTC
 * (JavaScript would read it as local time, which would make the file depend on the host's zone).
 */
export function parsePublished(text: string): number {
  const m = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/.exec(text);
  if (!m) return Number.NaN;
  return Date.parse(m[1] === undefined && text.length > 10 ? `${text}Z` : text);
}

/** The size of a regular file; null when there is none (a directory in the way fails when opened). */
async function sizeOf(path: string): Promise<number | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function cut(path: string, length: number): Promise<void> {
  await truncate(path, length);
  const handle = await open(path, 'r+');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
