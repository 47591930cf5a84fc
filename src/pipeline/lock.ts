import { sleep } from '../core/async.js';
import { readFileSync, unlinkSync } from 'node:fs';
import { mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { OktailError, errorMessage } from '../core/errors.js';

export const LOCK_FILE = 'lock';

/** What the lock file says about its holder. */
export interface LockHolder {
  pid: number;
  /** What holds it, e.g. "run" or "state reset". */
  command: string;
  started_at: string;
  /** Start time of the holder process in clock ticks since boot (Linux), to see through pid reuse. */
  proc_start: string | null;
  /** The kernel's boot id (Linux): a lock from before a reboot is stale whatever its pid. */
  boot_id: string | null;
  nonce: string;
}

/** Locks this process holds, so a second acquire in the same process is refused rather than taken over. */
const heldHere = new Set<string>();

/** A lock file younger than this with unreadable content is still being written by its creator. */
const WRITING_GRACE_MS = 5_000;
/** A takeover takes a few system calls; a takeover marker this old belongs to a process that died in it. */
const TAKEOVER_ABANDONED_MS = 10_000;
const MAX_ATTEMPTS = 200;

/**
 * One collector (or state command) per data directory. The lock is `data_dir/lock`, created with
 * O_EXCL and holding the holder's pid. A lock whose holder is gone is taken over; the takeover runs
 * under a second O_EXCL file and removes the stale lock only if it is still byte-for-byte the one found
 * stale, so two processes taking over at once cannot both end up holding it.
 */
export class DataDirLock {
  readonly path: string;
  readonly holder: LockHolder;
  readonly #text: string;
  #released = false;
  readonly #onExit = () => this.releaseSync();

  private constructor(path: string, holder: LockHolder, text: string) {
    this.path = path;
    this.holder = holder;
    this.#text = text;
    heldHere.add(path);
    // A process that exits without reaching `release` (e.g. on a second Ctrl-C) still removes its lock.
    process.once('exit', this.#onExit);
  }

  static async acquire(dataDir: string, command: string): Promise<DataDirLock> {
    const dir = resolve(dataDir);
    const path = join(dir, LOCK_FILE);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const holder: LockHolder = {
      pid: process.pid,
      command,
      started_at: new Date().toISOString(),
      proc_start: procStart(process.pid),
      boot_id: bootId(),
      nonce: randomBytes(8).toString('hex'),
    };
    const text = JSON.stringify(holder) + '\n';
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        await writeFile(path, text, { flag: 'wx', mode: 0o644 });
        return new DataDirLock(path, holder, text);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw lockError(path, err);
      }
      const found = await readOrNull(path);
      if (found === null) continue;
      const other = parseHolder(found.text);
      if (other === null) {
        // O_EXCL creation and the write are two steps: give a fresh, still empty lock time to fill.
        if (Date.now() - found.mtimeMs < WRITING_GRACE_MS) {
          await sleep(20);
          continue;
        }
      } else if (holderAlive(other, path)) {
        throw new OktailError(
          'STATE_LOCKED',
          `data_dir ${dir} is in use by oktail ${other.command} (pid ${other.pid}, since ${other.started_at}); stop it first`,
        );
      }
      await removeStale(path, found.text);
    }
    throw new OktailError('STATE_LOCKED', `Could not take the lock ${path}: it keeps changing hands`);
  }

  /** Removes the lock if it is still ours. Calling it twice is fine. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    process.off('exit', this.#onExit);
    heldHere.delete(this.path);
    const found = await readOrNull(this.path);
    if (found?.text === this.#text) await unlink(this.path).catch(() => undefined);
  }

  releaseSync(): void {
    if (this.#released) return;
    this.#released = true;
    process.off('exit', this.#onExit);
    heldHere.delete(this.path);
    try {
      if (readFileSync(this.path, 'utf8') === this.#text) unlinkSync(this.path);
    } catch {
      // Gone already, or unreadable: nothing of ours to remove.
    }
  }
}

/** The holder a lock file names, or null when it names none (empty, cut short, not ours). */
export function parseHolder(text: string): LockHolder | null {
  try {
    const v = JSON.parse(text) as Partial<LockHolder> | null;
    if (v === null || typeof v !== 'object' || !Number.isSafeInteger(v.pid) || (v.pid ?? 0) <= 0) return null;
    return {
      pid: v.pid!,
      command: typeof v.command === 'string' ? v.command : 'unknown',
      started_at: typeof v.started_at === 'string' ? v.started_at : 'unknown',
      proc_start: typeof v.proc_start === 'string' ? v.proc_start : null,
      boot_id: typeof v.boot_id === 'string' ? v.boot_id : null,
      nonce: typeof v.nonce === 'string' ? v.nonce : '',
    };
  } catch {
    return null;
  }
}

/** The lock file's holder, if any, without taking anything: for messages and `state show`. */
export async function readLockHolder(dataDir: string): Promise<LockHolder | null> {
  const found = await readOrNull(join(resolve(dataDir), LOCK_FILE));
  return found === null ? null : parseHolder(found.text);
}

/** Whether the process a lock names still runs. Errs towards "alive": a wrong "dead" means two writers. */
export function holderAlive(holder: LockHolder, lockPath: string): boolean {
  const boot = bootId();
  if (holder.boot_id !== null && boot !== null && holder.boot_id !== boot) return false;
  if (holder.pid === process.pid) {
    // Our own pid: a lock of this process, or one left by an earlier process that had the same pid
    // (a container's pid 1 after a restart), which cannot be running since we are.
    return heldHere.has(lockPath);
  }
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: it exists, as another user.
  }
  const start = procStart(holder.pid);
  return holder.proc_start === null || start === null || start === holder.proc_start;
}

async function removeStale(path: string, staleText: string): Promise<void> {
  const marker = `${path}.takeover`;
  try {
    await writeFile(marker, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw lockError(marker, err);
    const info = await stat(marker).catch(() => null);
    if (info && Date.now() - info.mtimeMs > TAKEOVER_ABANDONED_MS) {
      await unlink(marker).catch(() => undefined);
    } else {
      await sleep(20);
    }
    return;
  }
  try {
    // Only takeovers remove a lock they did not create, and only one runs at a time: if the file still
    // holds the stale text, nobody has replaced it since it was judged stale.
    const again = await readOrNull(path);
    if (again?.text === staleText) await unlink(path);
  } finally {
    await unlink(marker).catch(() => undefined);
  }
}

async function readOrNull(path: string): Promise<{ text: string; mtimeMs: number } | null> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, mtimeMs: info.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw lockError(path, err);
  }
}

function lockError(path: string, err: unknown): OktailError {
  return new OktailError('STATE_LOCKED', `Cannot use the lock file ${path}: ${errorMessage(err)}`, false, {
    cause: err,
  });
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
function procStart(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may itself contain spaces or parentheses.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

let cachedBootId: string | null | undefined;
function bootId(): string | null {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId;
}
