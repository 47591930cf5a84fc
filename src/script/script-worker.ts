/**
 * Entry point of a script's worker thread: one ScriptSandbox, driven by messages from the host. The host
 * watches every call from the main thread, so a library call the sandbox's limits cannot interrupt costs
 * this thread (which the host then terminates), never the collector's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { OktailError, errorMessage } from '../core/errors.js';
import { ScriptFailure, ScriptSandbox } from './sandbox.js';
import { describe, hookProblems, isObject, readTags, type ScriptIssue } from './script-checks.js';
import {
  serializeError,
  type WorkerInit,
  type WorkerMessage,
  type WorkerRequest,
} from './worker-protocol.js';

if (parentPort === null) throw new Error('script-worker runs only as a worker thread');
const port = parentPort;
const init = workerData as WorkerInit;
let now = init.now;
/** The host adds the tags to every event, over the event's own fields: no need to send those back. */
let tagKeys: string[] = [];

const post = (message: WorkerMessage, transfer: ArrayBuffer[] = []): void =>
  port.postMessage(message, transfer);
const phase = (hook: string, deadlineMs = init.limits.deadlineMs): void =>
  post({ type: 'phase', hook, deadlineMs });

const sandbox = await ScriptSandbox.create({
  name: init.name,
  chunkName: init.chunkName,
  limits: init.limits,
  log: (level, message) => post({ type: 'log', level, message }),
  clock: init.pinnedClock ? () => now ?? Date.now() : undefined,
});

if (init.mode === 'check') {
  post({ type: 'checked', issues: check() });
  sandbox.close();
} else {
  let loaded = false;
  try {
    phase('top-level code');
    sandbox.loadScript(init.source);
    const problems = hookProblems(sandbox);
    if (problems.length > 0) {
      throw new OktailError(
        'SCRIPT_ERROR',
        `${init.name}: ${problems.map((p) => p.message).join('; ')}`,
        false,
      );
    }
    const tags = readTags(sandbox);
    tagKeys = Object.keys(tags);
    post({
      type: 'loaded',
      tags,
      hasTransform: sandbox.globalType('transform') === 'function',
    });
    loaded = true;
  } catch (err) {
    post({ type: 'failure', id: null, error: serializeError(err), broken: sandbox.broken });
    sandbox.close();
  }
  if (loaded) port.on('message', (request: WorkerRequest) => serve(request));
}

function serve(request: WorkerRequest): void {
  now = request.now;
  try {
    if (request.type === 'call') {
      const value = sandbox.call(request.hook, request.args, request.resultCount);
      post({ type: 'result', id: request.id, value, broken: sandbox.broken });
    } else {
      // The page's bytes go back to the host, which renders from them.
      const value = { ...sandbox.transformPage(request, tagKeys), body: request.body };
      const moved = request.body.buffer instanceof ArrayBuffer ? [request.body.buffer] : [];
      post({ type: 'result', id: request.id, value, broken: sandbox.broken }, moved);
    }
  } catch (err) {
    post({ type: 'failure', id: request.id, error: serializeError(err), broken: sandbox.broken });
  }
}

/** What `oktail validate` reports: the same steps as a run's load, then a dry run of the first two hooks. */
function check(): ScriptIssue[] {
  try {
    phase('top-level code');
    sandbox.loadScript(init.source);
  } catch (err) {
    return [issueOf(err)];
  }
  const issues = hookProblems(sandbox);
  try {
    readTags(sandbox);
  } catch (err) {
    issues.push({ line: null, message: errorMessage(err).replace(`${init.name}: `, '') });
  }
  if (issues.length > 0) return issues;
  try {
    phase('initial_state');
    const [state] = sandbox.call('initial_state', [{ now: new Date(now ?? Date.now()).toISOString() }], 1);
    if (!isObject(state))
      return [{ line: null, message: `initial_state must return a state table (got ${describe(state)})` }];
    phase('cycle_request');
    const [url] = sandbox.call('cycle_request', [state], 1);
    if (typeof url !== 'string' || url === '') {
      return [{ line: null, message: `cycle_request must return a URL string (got ${describe(url)})` }];
    }
  } catch (err) {
    return [issueOf(err)];
  }
  return [];
}

function issueOf(err: unknown): ScriptIssue {
  if (err instanceof ScriptFailure) return { line: err.line, message: err.detail };
  return { line: null, message: errorMessage(err) };
}
