import { open } from 'node:fs/promises';

/**
 * fsyncs a directory. A file's name lives in its directory, not in the file: after creating or renaming
 * a file, only this makes the new name survive a crash of the machine.
 */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
