/*
 * The second half of `npm run build`, after tsc has compiled src/ into dist/: copies the files tsc does not
 * emit (the built-in Lua script, the console's static assets) and bundles the CLI into dist/bundle/, which
 * bin/oktail.js loads.
 *
 * Why a bundle: a short command such as `oktail validate` spent most of its time opening and compiling some
 * 230 modules (zod and yaml alone are 170 files). Bundled, the same code is a handful of files. Only the
 * packages on the short commands' start-up path are bundled, and the AWS SDK (see `isAwsSdk`); every
 * other package (the HTTP stack, the other sinks' clients, pino, wasmoon) stays external and loads from
 * node_modules exactly as from dist/, so what `run` executes of them is unchanged. The dynamic imports in
 * src/cli stay dynamic: with code splitting each becomes a chunk loaded only by the command that needs it.
 *
 * src/ imports zod as a namespace (`import * as z from 'zod'`, as zod documents): esbuild then keeps only
 * the parts of zod oktail calls, about 210 KB of its 740 KB, and none of its ~50 locales but English.
 * `import { z } from 'zod'` would keep all of it, a few hundred KB more to compile at every start.
 *
 * dist/bundle/ sits at the same depth as dist's own folders, so the paths src/ computes from
 * `import.meta.url` (`../../package.json`, `../script/okta.lua`, `../console/static/`) resolve to the same
 * files from either layout. The script worker is an entry point of its own, so `./script-worker.js` beside
 * the module that starts it exists in both layouts.
 */
import { cpSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

cpSync(join(root, 'src/script/okta.lua'), join(dist, 'script/okta.lua'));
cpSync(join(root, 'src/console/static'), join(dist, 'console/static'), { recursive: true });

/** Packages compiled into the bundle: everything `--help`, `validate`, `state` and `config` load at start. */
const BUNDLED = new Set(['commander', '@commander-js/extra-typings', 'yaml', 'zod']);
/**
 * The AWS SDK is bundled too. Only the s3 sink's driver imports it, so it lands in chunks that only an
 * s3 sink loads. Loading it and sending a first PutObject took 180-270 ms of CPU from node_modules and
 * 115-140 ms bundled (three runs each).
 */
const AWS_SDK_SCOPES = ['@aws-sdk/', '@aws/', '@smithy/'];
/** @param {string} name */
const isAwsSdk = (name) => AWS_SDK_SCOPES.some((scope) => name.startsWith(scope)) || name === 'bowser';

/** @param {string} specifier */
const packageName = (specifier) => {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
};

/** Marks esbuild's own resolution of a specifier, asked from inside the plugin. */
const PROBE = {};

/**
 * Leaves every bare import outside BUNDLED to Node's own resolution at run time.
 * @type {import('esbuild').Plugin}
 */
const externalPackages = {
  name: 'oktail-external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.pluginData === PROBE) return undefined;
      const name = packageName(args.path);
      if (args.path.startsWith('node:') || BUNDLED.has(name)) return undefined;
      if (isAwsSdk(name)) {
        // Bundled wherever esbuild finds it (a nested node_modules included); an optional package that
        // is not installed stays a run-time `require`, which the SDK makes inside its own try/catch.
        const found = await b.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: PROBE,
        });
        if (found.errors.length === 0) return undefined;
      }
      return { path: args.path, external: true };
    });
  },
};

const outdir = join(dist, 'bundle');
rmSync(outdir, { recursive: true, force: true });
await build({
  // Flat names keep every output file directly in dist/bundle/ (see above).
  entryPoints: { main: join(dist, 'cli/main.js'), 'script-worker': join(dist, 'script/script-worker.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  sourcemap: true,
  plugins: [externalPackages],
  // commander and yaml are CommonJS; their `require('node:…')` calls need a real `require` in an ES module.
  banner: {
    js: "import { createRequire as __oktailCreateRequire } from 'node:module'; const require = __oktailCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
