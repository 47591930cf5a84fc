import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { setWorkerStart } from '../../src/script/script-host.js';

/*
 * Unit tests import src/ as TypeScript, so the script host finds no compiled `script-worker.js` beside
 * it: its worker starts from `script-worker.ts` through tsx's loader instead. Node 20 does not apply
 * `--import` loaders given in a worker's `execArgv` to the worker's entry point, so a small bootstrap
 * registers the loader first (tsx's `register` API, called explicitly: importing its `--import` entry
 * left `.ts` unknown). Tests of the built CLI run dist/, which has the compiled worker.
 */
const entry = new URL('../../src/script/script-worker.ts', import.meta.url);
const require = createRequire(import.meta.url);
const manifest = require('tsx/package.json') as {
  exports: Record<string, { import: { default: string } }>;
};
const api = new URL(
  manifest.exports['./esm/api']!.import.default,
  pathToFileURL(require.resolve('tsx/package.json')),
);
const bootstrap =
  `import(${JSON.stringify(api.href)})` +
  `.then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
setWorkerStart((options) => new Worker(bootstrap, { ...options, eval: true }));
