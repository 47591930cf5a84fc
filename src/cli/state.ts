import { readFile, stat } from 'node:fs/promises';
import { Command } from '@commander-js/extra-typings';
import type { Config } from '../config/schema.js';
import type { Checkpoint, SourceCheckpoint } from '../core/checkpoint.js';
import { OktailError } from '../core/errors.js';
import type { JsonValue } from '../core/json.js';
import { FileCheckpointStore, parseCheckpoint } from '../pipeline/checkpoint-file.js';
import { DataDirLock } from '../pipeline/lock.js';
import { EXIT_FAILURE } from './exit-codes.js';

interface StateContext {
  config: Config;
  checkpoint: Checkpoint;
  /** Where the checkpoint lives, for messages: the state file, or the state database (no password). */
  where: string;
  /** Takes more sources from running replicas (postgres); the data_dir lock already covers a file. */
  lock: (sources: readonly string[]) => Promise<void>;
  /** Writes one source's checkpoint (null: forget it), leaving the others as they are. */
  commitSource: (source: string, entry: SourceCheckpoint | null) => Promise<void>;
  /** Replaces the whole checkpoint. */
  replace: (checkpoint: Checkpoint) => Promise<void>;
}

/**
 * Runs `fn` holding the data directory's lock, so a state command never reads a checkpoint a running
 * collector is about to replace, nor writes one under it. With the state in PostgreSQL it holds the
 * leases of the sources `lock` names instead, taken as a replica would (refused while a replica runs them).
 */
async function withState<T>(
  configFile: string,
  command: string,
  fn: (ctx: StateContext) => Promise<T>,
  options: { lock?: (config: Config) => string[]; readOnly?: boolean } = {},
): Promise<T> {
  const { loadConfig } = await import('../config/load.js');
  // State commands never contact Okta: they must work without the token's variable set.
  const config = await loadConfig(configFile, process.env, { secrets: 'state' });
  if (config.state?.backend === 'postgres') {
    const { StateAdmin } = await import('../cluster/admin.js');
    const admin = await StateAdmin.open(config.state, command);
    try {
      await admin.lock(options.lock?.(config) ?? []);
      const checkpoint = await admin.store.load();
      return await fn({
        config,
        checkpoint,
        where: admin.where,
        lock: (sources) => admin.lock(sources),
        commitSource: (source, entry) => admin.store.commitSource(source, entry),
        replace: (cp) => admin.store.commit(cp),
      });
    } finally {
      await admin.close();
    }
  }
  if (options.readOnly) {
    // Reading needs no lock: the checkpoint is replaced by an atomic rename, so a read sees the old
    // file or the new one, never a mix, even while a collector (or its console) commits.
    const store = new FileCheckpointStore(config.data_dir);
    const checkpoint = await store.load();
    const refuse = async () => {
      throw new OktailError('INTERNAL', `${command} reads only`);
    };
    return fn({ config, checkpoint, where: store.path, lock: refuse, commitSource: refuse, replace: refuse });
  }
  const lock = await DataDirLock.acquire(config.data_dir, command);
  try {
    const store = new FileCheckpointStore(config.data_dir);
    const checkpoint = await store.load();
    return await fn({
      config,
      checkpoint,
      where: store.path,
      lock: async () => {},
      commitSource: async (source, entry) => {
        if (entry === null) delete checkpoint.sources[source];
        else checkpoint.sources[source] = entry;
        await store.commit(checkpoint);
      },
      replace: (cp) => store.commit(cp),
    });
  } finally {
    await lock.release();
  }
}

function usage(message: string): OktailError {
  return new OktailError('CONFIG_INVALID', message);
}

function show(value: JsonValue | undefined): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

const STATE_KEY_ORDER = ['next', 'since', 'last_uuid', 'last_published'];
const STATE_KEY_LABEL: Record<string, string> = { next: 'next (cursor)' };

/** The human-readable view of `state show`. */
export async function describeState(config: Config, checkpoint: Checkpoint, only?: string): Promise<string> {
  const lines: string[] = [];
  const names = [...new Set([...Object.keys(config.sources), ...Object.keys(checkpoint.sources)])].filter(
    (name) => only === undefined || name === only,
  );
  for (const name of names) {
    const cfg = config.sources[name];
    const entry = checkpoint.sources[name];
    const notes: string[] = [];
    if (!cfg) notes.push('not in the config');
    if (cfg && entry && entry.domain !== cfg.domain) {
      notes.push(`the config reads ${cfg.domain}: the next run starts this source afresh`);
    }
    const suffix = notes.length > 0 ? ` (${notes.join('; ')})` : '';
    if (!entry) {
      const from = cfg?.start_from ?? 'now';
      lines.push(
        `source ${name} (${cfg?.domain ?? '?'}): no checkpoint yet; the next run starts from ${from}`,
      );
      continue;
    }
    lines.push(`source ${name} (${entry.domain}), committed ${entry.committed_at}${suffix}`);
    const keys = Object.keys(entry.state).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    for (const key of keys) lines.push(`  ${STATE_KEY_LABEL[key] ?? key}: ${show(entry.state[key])}`);
  }
  for (const [name, position] of Object.entries(checkpoint.sinks)) {
    const inputs = config.sinks[name]?.inputs;
    if (only !== undefined && inputs !== undefined && !inputs.includes(only)) continue;
    const cfg = config.sinks[name];
    if (typeof position.path === 'string' && typeof position.length === 'number') {
      let line = `sink ${name}: ${position.path}, ${position.length} bytes committed`;
      const size = await stat(position.path).then(
        (s) => s.size,
        () => null,
      );
      if (size === null) line += ' (the file does not exist now)';
      else if (size > position.length) {
        line += ` (the file has ${size}; the next run removes the ${size - position.length} bytes past the checkpoint)`;
      } else if (size < position.length) line += ` (the file has only ${size}: it was cut or replaced)`;
      if (cfg?.type === 'file' && cfg.path !== position.path) line += `; the config now writes ${cfg.path}`;
      if (!cfg) line += ' (not in the config)';
      lines.push(line);
    } else {
      lines.push(`sink ${name}: ${JSON.stringify(position)}`);
    }
  }
  return lines.join('\n') + '\n';
}

function rank(key: string): number {
  const i = STATE_KEY_ORDER.indexOf(key);
  return i < 0 ? STATE_KEY_ORDER.length : i;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `parseCheckpoint` checks the envelope; an import also checks every entry, since it replaces state. */
export function parseImport(text: string, where: string): Checkpoint {
  const cp = parseCheckpoint(text, where);
  const problems: string[] = [];
  for (const [name, entry] of Object.entries(cp.sources as Record<string, unknown>)) {
    if (!isObject(entry)) problems.push(`sources.${name} is not an object`);
    else {
      if (typeof entry.domain !== 'string' || entry.domain === '')
        problems.push(`sources.${name}.domain is missing`);
      if (!isObject(entry.state)) problems.push(`sources.${name}.state is not an object`);
      if (typeof entry.committed_at !== 'string') problems.push(`sources.${name}.committed_at is missing`);
    }
  }
  for (const [name, entry] of Object.entries(cp.sinks as Record<string, unknown>)) {
    if (!isObject(entry)) problems.push(`sinks.${name} is not an object`);
    else if ('length' in entry && !(Number.isSafeInteger(entry.length) && (entry.length as number) >= 0)) {
      problems.push(`sinks.${name}.length is not a byte count`);
    }
  }
  if (problems.length > 0) {
    throw new OktailError('STATE_CORRUPT', `${where} is not an oktail checkpoint: ${problems.join('; ')}`);
  }
  return { version: 1, sources: cp.sources, sinks: cp.sinks };
}

async function readInput(file: string): Promise<string> {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function stateCommand() {
  const state = new Command('state').description(
    'inspect, reset, export or import the checkpoint (all but show are refused while a collector runs on the data_dir)',
  );

  state
    .command('show')
    .description("print each source's cursor and last event, each file sink's committed length, and when")
    .argument('[source]', 'only this source (and the sinks it feeds)')
    .requiredOption('-c, --config <file>', 'config file (YAML)')
    .action(async (source, opts) => {
      await withState(
        opts.config,
        'state show',
        async ({ config, checkpoint }) => {
          if (source !== undefined && !config.sources[source] && !checkpoint.sources[source]) {
            throw usage(`There is no source "${source}" in the config or the checkpoint`);
          }
          process.stdout.write(await describeState(config, checkpoint, source));
        },
        { readOnly: true },
      );
    });

  state
    .command('reset')
    .description("forget a source's position: the next run starts from --start-from, start_from or now")
    .argument('<source>', 'source name')
    .option('--start-from <iso>', 'ISO 8601 date-time with a timezone to start the next run from')
    .requiredOption('-c, --config <file>', 'config file (YAML)')
    .action(async (source, opts) => {
      const startFrom = opts.startFrom;
      const { isIsoDateTime } = await import('../config/schema.js');
      if (startFrom !== undefined && !isIsoDateTime(startFrom)) {
        throw usage(`--start-from must be an ISO 8601 date-time with a timezone, e.g. 2025-01-15T08:30:00Z`);
      }
      await withState(
        opts.config,
        'state reset',
        async ({ config, checkpoint, commitSource }) => {
          const cfg = config.sources[source];
          const previous = checkpoint.sources[source];
          if (!cfg && !previous)
            throw usage(`There is no source "${source}" in the config or the checkpoint`);
          let from: string;
          if (startFrom !== undefined) {
            if (!cfg)
              throw usage(`--start-from needs source "${source}" in the config (its domain and script)`);
            // The collection script decides what a start looks like, exactly as a first run would.
            const { loadCollectionScript } = await import('../script/index.js');
            const logic = await loadCollectionScript({
              path: cfg.script ?? undefined,
              log: (level, message) => {
                if (level === 'warn' || level === 'error') process.stderr.write(`warning: ${message}\n`);
              },
            });
            const now = new Date().toISOString();
            try {
              from = new Date(startFrom).toISOString();
              const initial = await logic.initialState({ startFrom: from, now });
              checkpoint.sources[source] = { domain: cfg.domain, state: initial, committed_at: now };
            } finally {
              await logic.close();
            }
          } else {
            delete checkpoint.sources[source];
            from = cfg
              ? (cfg.start_from ?? 'now (the time of the next run)')
              : 'nowhere: it is not in the config';
          }
          await commitSource(source, checkpoint.sources[source] ?? null);
          process.stdout.write(`Reset source ${source}; the next run starts from ${from}.\n`);
          const current = checkpoint.sources[source];
          if (current) process.stdout.write(`New state: ${JSON.stringify(current.state)}\n`);
          if (previous) process.stdout.write(`Previous state: ${JSON.stringify(previous)}\n`);
        },
        { lock: () => [source] },
      );
    });

  state
    .command('export')
    .description('print the checkpoint as JSON (it holds no secrets), to move a collector or back it up')
    .requiredOption('-c, --config <file>', 'config file (YAML)')
    .action(async (opts) => {
      await withState(opts.config, 'state export', async ({ checkpoint }) => {
        process.stdout.write(JSON.stringify(checkpoint, null, 2) + '\n');
      });
    });

  state
    .command('import')
    .description('replace the checkpoint with one from `state export` ("-" reads stdin)')
    .argument('<file>', 'exported checkpoint JSON, or - for stdin')
    .option('--force', 'replace an existing checkpoint')
    .requiredOption('-c, --config <file>', 'config file (YAML)')
    .action(async (file, opts) => {
      const text = await readInput(file).catch((err: NodeJS.ErrnoException) => {
        throw usage(`Cannot read ${file}: ${err.code ?? err.message}`);
      });
      const incoming = parseImport(text, file === '-' ? 'stdin' : file);
      await withState(
        opts.config,
        'state import',
        async ({ config, checkpoint, where, lock, replace }) => {
          const existing = [...Object.keys(checkpoint.sources), ...Object.keys(checkpoint.sinks)];
          if (existing.length > 0 && opts.force !== true) {
            process.stderr.write(
              `oktail: ${where} already holds state (${existing.join(', ')}); ` +
                'export it first if you need it, then import with --force to replace it\n',
            );
            process.exitCode = EXIT_FAILURE;
            return;
          }
          // Sources only the database knows are replaced too: no replica may be running them either.
          await lock(
            Object.keys(checkpoint.sources).filter((s) => !(s in config.sources) && !(s in incoming.sources)),
          );
          await replace(incoming);
          process.stdout.write(
            `Imported ${Object.keys(incoming.sources).length} source(s) and ` +
              `${Object.keys(incoming.sinks).length} sink(s) into ${where}.\n`,
          );
          for (const warning of importWarnings(config, incoming))
            process.stderr.write(`warning: ${warning}\n`);
        },
        {
          lock: (config) => [...new Set([...Object.keys(config.sources), ...Object.keys(incoming.sources)])],
        },
      );
    });

  return state;
}

/** What about an imported checkpoint will not line up with this config. */
export function importWarnings(config: Config, cp: Checkpoint): string[] {
  const out: string[] = [];
  for (const [name, entry] of Object.entries(cp.sources)) {
    const cfg = config.sources[name];
    if (!cfg) out.push(`source ${name} is not in the config; its state is kept but not used`);
    else if (cfg.domain !== entry.domain) {
      out.push(
        `source ${name} belongs to ${entry.domain}, the config reads ${cfg.domain}: it will start afresh`,
      );
    }
  }
  for (const [name, position] of Object.entries(cp.sinks)) {
    const cfg = config.sinks[name];
    if (!cfg) out.push(`sink ${name} is not in the config`);
    else if (cfg.type === 'file' && typeof position.path === 'string' && position.path !== cfg.path) {
      out.push(
        `sink ${name} recorded ${position.path} but the config writes ${cfg.path}: ` +
          'its committed length will not be applied (edit that path in the exported JSON to match)',
      );
    }
  }
  return out;
}
