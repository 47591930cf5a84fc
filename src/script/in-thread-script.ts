import type { RawEvents, TransformedEvents } from '../core/collection-logic.js';
import { OktailError } from '../core/errors.js';
import type { JsonValue } from '../core/json.js';
import type { ScriptLimits, ScriptLog } from './failure.js';
import { ScriptSandbox } from './sandbox.js';
import { hookProblems, readTags } from './script-checks.js';
import { baselineWasmOnly } from './script-host.js';

/**
 * The built-in script, run in the collector's own thread. The watchdog thread exists for scripts that might
 * get stuck inside one library call, where the sandbox's limits cannot reach; the built-in script makes no
 * such call (its limits still apply), and a thread of its own would cost every collector about 15 MB.
 */
export class InThreadScript {
  private closed = false;

  private constructor(
    private readonly sandbox: ScriptSandbox,
    readonly tags: Record<string, JsonValue>,
    readonly hasTransform: boolean,
  ) {}

  static async load(options: {
    name: string;
    chunkName: string;
    source: Uint8Array;
    limits: ScriptLimits;
    log?: ScriptLog | undefined;
    clock?: (() => number) | undefined;
  }): Promise<InThreadScript> {
    baselineWasmOnly();
    const sandbox = await ScriptSandbox.create(options);
    try {
      sandbox.loadScript(options.source);
      const problems = hookProblems(sandbox);
      if (problems.length > 0) {
        throw new OktailError(
          'SCRIPT_ERROR',
          `${options.name}: ${problems.map((p) => p.message).join('; ')}`,
          false,
        );
      }
      const tags = readTags(sandbox);
      return new InThreadScript(sandbox, tags, sandbox.globalType('transform') === 'function');
    } catch (err) {
      sandbox.close();
      throw err;
    }
  }

  call(hook: string, args: JsonValue[], resultCount: number): Promise<(JsonValue | undefined)[]> {
    return Promise.resolve().then(() => {
      this.checkOpen();
      return this.sandbox.call(hook, args, resultCount);
    });
  }

  transformPage(events: RawEvents): Promise<TransformedEvents> {
    return Promise.resolve().then(() => {
      this.checkOpen();
      return this.sandbox.transformPage(events, Object.keys(this.tags));
    });
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.sandbox.close();
    }
    return Promise.resolve();
  }

  private checkOpen(): void {
    if (this.closed) {
      throw new OktailError('SCRIPT_ERROR', `${this.sandbox.name}: the script has been closed`, false);
    }
  }
}
