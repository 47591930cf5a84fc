/** Resolves after `ms`, or rejects with the signal's reason when aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A mutual-exclusion lock for async sections, granted in call order. */
export class PromiseLock {
  #tail: Promise<void> = Promise.resolve();

  /** Waits for the lock; the returned function releases it (for holds that outlive one call). */
  async acquire(): Promise<() => void> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    return release;
  }

  async run<T>(section: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await section();
    } finally {
      release();
    }
  }
}
