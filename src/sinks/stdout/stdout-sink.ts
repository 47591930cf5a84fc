import type { EventBatch, Sink, WriteResult } from '../../core/sink.js';
import { OktailError } from '../../core/errors.js';

export interface StdoutSinkOptions {
  name: string;
  inputs: readonly string[];
  stream?: NodeJS.WritableStream;
}

/**
 * NDJSON on stdout. At-least-once: a batch written just before a crash is written again after restart,
 * because a pipe has no position to record and roll back.
 */
export class StdoutSink implements Sink {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly kind = 'acknowledged' as const;
  readonly #stream: NodeJS.WritableStream;

  constructor(options: StdoutSinkOptions) {
    this.name = options.name;
    this.inputs = options.inputs;
    this.#stream = options.stream ?? process.stdout;
  }

  async open(): Promise<void> {}

  write(batch: EventBatch, _signal?: AbortSignal): Promise<WriteResult> {
    return new Promise((resolve) => {
      this.#stream.write(batch.data, (err) => {
        if (!err) resolve({ kind: 'ok' });
        else {
          // A closed pipe will not come back: halting beats spinning on EPIPE.
          const code = (err as NodeJS.ErrnoException).code;
          const error = new OktailError(
            'SINK_WRITE_FAILED',
            `Cannot write to stdout: ${err.message}`,
            code !== 'EPIPE',
            {
              cause: err,
            },
          );
          resolve(code === 'EPIPE' ? { kind: 'fatal', error } : { kind: 'retry', afterMs: 1000, error });
        }
      });
    });
  }

  checkpoint(): undefined {
    return undefined;
  }

  async close(): Promise<void> {}
}
