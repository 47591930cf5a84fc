import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, YAMLMap, YAMLSeq, type Document } from 'yaml';
import { ConfigError, type ConfigProblem } from '../config/errors.js';
import { parseConfig } from '../config/load.js';
import type { Config, OktaSourceConfig } from '../config/schema.js';
import { OktailError, errorMessage } from '../core/errors.js';
import { syncDir } from '../core/fs-sync.js';
import {
  AUTH_STRATEGIES,
  BEARER_KEYS,
  DEFAULT_SCOPES,
  OAUTH_KEYS,
  type OAuth2AuthConfig,
} from '../sources/okta/auth/schema.js';

/*
 * Editing the config file from the console. The file is changed with the yaml Document API, key by key,
 * so comments, key order and everything the console does not manage stay as they were. A change is
 * validated by the same loader `oktail validate` uses before anything is written; then the secrets are
 * written (each its own mode-0600 file under data_dir/secrets, referenced by auth.token_file,
 * auth.private_key_pass_file and tls.key_pass_file) and the config replaced atomically.
 */

/** What the Add/Edit Source form sends. Empty secrets mean "keep the one that is set". */
export interface SourceForm {
  name: string;
  domain: string;
  interval_secs: string;
  start_from: string;
  strategy: string;
  token: string;
  header: string;
  prefix: string;
  client_id: string;
  private_key_file: string;
  private_key_pass: string;
  key_id: string;
  /** Space- or comma-separated; empty means the default. */
  scopes: string;
  /** auto, true or false. */
  dpop: string;
  tls_enabled: boolean;
  ca_file: string;
  crt_file: string;
  key_file: string;
  key_pass: string;
  verify_certificate: boolean;
  verify_hostname: boolean;
  script: string;
  sinks: string[];
}

export const FORM_FIELDS = [
  'name',
  'domain',
  'interval_secs',
  'start_from',
  'strategy',
  'token',
  'header',
  'prefix',
  'client_id',
  'private_key_file',
  'private_key_pass',
  'key_id',
  'scopes',
  'dpop',
  'tls_enabled',
  'ca_file',
  'crt_file',
  'key_file',
  'key_pass',
  'verify_certificate',
  'verify_hostname',
  'script',
  'sinks',
] as const;
export type FormField = (typeof FORM_FIELDS)[number];

/** A problem for the form: beside a field, or (field null) above the form. */
export interface FieldProblem {
  field: FormField | null;
  message: string;
}

const FIELD_BY_KEY: Record<string, FormField> = {
  domain: 'domain',
  interval_secs: 'interval_secs',
  start_from: 'start_from',
  script: 'script',
  'auth.strategy': 'strategy',
  'auth.token': 'token',
  'auth.token_file': 'token',
  'auth.header': 'header',
  'auth.prefix': 'prefix',
  'auth.client_id': 'client_id',
  'auth.private_key_file': 'private_key_file',
  'auth.private_key_pass': 'private_key_pass',
  'auth.private_key_pass_file': 'private_key_pass',
  'auth.key_id': 'key_id',
  'auth.scopes': 'scopes',
  'auth.dpop': 'dpop',
  'tls.enabled': 'tls_enabled',
  'tls.ca_file': 'ca_file',
  'tls.crt_file': 'crt_file',
  'tls.key_file': 'key_file',
  'tls.key_pass': 'key_pass',
  'tls.key_pass_file': 'key_pass',
  'tls.verify_certificate': 'verify_certificate',
  'tls.verify_hostname': 'verify_hostname',
};

/** Which form field a loader problem belongs to, for a problem about source `name`. */
export function fieldOf(problem: ConfigProblem, name: string): FieldProblem {
  const prefix = `sources.${name}`;
  if (problem.path === prefix) {
    return { field: /no sink takes/.test(problem.message) ? 'sinks' : 'name', message: problem.message };
  }
  if (problem.path.startsWith(`${prefix}.`)) {
    // A list item's problem (auth.scopes[0]) belongs to the list's field.
    const key = problem.path.slice(prefix.length + 1).replace(/\[\d+\]/g, '');
    const field = FIELD_BY_KEY[key] ?? FIELD_BY_KEY[key.split('.').slice(0, 2).join('.')];
    if (field) return { field, message: problem.message };
    // A key the form does not show (retry, proxy, ...): say which.
    return { field: null, message: `${problem.path}: ${problem.message}` };
  }
  if (/^sinks\.[^.]+\.inputs/.test(problem.path)) return { field: 'sinks', message: problem.message };
  if (problem.path.startsWith('sources[')) return { field: 'name', message: problem.message };
  return {
    field: null,
    message: problem.path === '' ? problem.message : `${problem.path}: ${problem.message}`,
  };
}

export interface ConfigFileOptions {
  file: string;
  env?: NodeJS.ProcessEnv;
}

/** The managed values of a source as the form shows them; secrets only as "set" flags. */
export interface SourceFormValues extends Omit<SourceForm, 'token' | 'key_pass' | 'private_key_pass'> {
  token_set: boolean;
  private_key_pass_set: boolean;
  key_pass_set: boolean;
  custom_script: string | null;
}

export class ConfigFile {
  readonly file: string;
  readonly #env: NodeJS.ProcessEnv;

  constructor(options: ConfigFileOptions) {
    this.file = resolve(options.file);
    this.#env = options.env ?? process.env;
  }

  get baseDir(): string {
    return dirname(this.file);
  }

  async #read(): Promise<{ text: string; doc: Document }> {
    const text = await readFile(this.file, 'utf8');
    return { text, doc: parseDocument(text, { keepSourceTokens: false }) };
  }

  /** Validates like `oktail validate` (schema and cross-checks); throws ConfigError. */
  parse(text: string): Config {
    return parseConfig(text, { env: this.#env, baseDir: this.baseDir, fileName: this.file });
  }

  async load(): Promise<Config> {
    return this.parse((await this.#read()).text);
  }

  /** The form's values for an existing source, read from the file as written (no secret values). */
  async formValues(name: string, config: Config, builtinScript: string): Promise<SourceFormValues | null> {
    const { doc } = await this.#read();
    const raw = doc.getIn(['sources', name]);
    const cfg = config.sources[name];
    if (!isMap(raw) || !cfg) return null;
    const get = (path: string[]): unknown => {
      const node = raw.getIn(path, true);
      return isScalar(node) ? node.value : undefined;
    };
    const str = (path: string[]): string => {
      const v = get(path);
      return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
    };
    let script = builtinScript;
    if (cfg.script) {
      try {
        script = await readFile(cfg.script, 'utf8');
      } catch {
        script = '';
      }
    }
    const auth = cfg.auth;
    return {
      name,
      domain: str(['domain']),
      interval_secs: String(cfg.interval_secs),
      start_from: str(['start_from']),
      strategy: auth.strategy,
      token_set: get(['auth', 'token']) !== undefined || get(['auth', 'token_file']) !== undefined,
      header: auth.strategy === 'bearer' ? auth.header : 'Authorization',
      prefix: auth.strategy === 'bearer' ? auth.prefix : 'SSWS ',
      client_id: str(['auth', 'client_id']),
      private_key_file: str(['auth', 'private_key_file']),
      private_key_pass_set:
        get(['auth', 'private_key_pass']) !== undefined ||
        get(['auth', 'private_key_pass_file']) !== undefined,
      key_id: str(['auth', 'key_id']),
      scopes: (auth.strategy === 'oauth2' ? auth.scopes : DEFAULT_SCOPES).join(' '),
      dpop: auth.strategy === 'oauth2' ? String(auth.dpop) : 'auto',
      tls_enabled: cfg.tls.enabled,
      ca_file: str(['tls', 'ca_file']),
      crt_file: str(['tls', 'crt_file']),
      key_file: str(['tls', 'key_file']),
      key_pass_set: get(['tls', 'key_pass']) !== undefined || get(['tls', 'key_pass_file']) !== undefined,
      verify_certificate: cfg.tls.verify_certificate,
      verify_hostname: cfg.tls.verify_hostname,
      script,
      custom_script: cfg.script,
      sinks: Object.entries(config.sinks)
        .filter(([, s]) => s.inputs.includes(name))
        .map(([n]) => n),
    };
  }

  /**
   * The source's config as validated from the form, without writing anything: for Test Connection.
   * Problems come back per field.
   */
  async trial(
    form: SourceForm,
    mode: 'create' | 'edit',
  ): Promise<
    { ok: true; source: OktaSourceConfig; config: Config } | { ok: false; problems: FieldProblem[] }
  > {
    const { doc } = await this.#read();
    const early = this.#precheck(form, mode, doc);
    if (early.length > 0) return { ok: false, problems: early };
    applyForm(doc, form, mode, inlineSecrets(form));
    try {
      const config = this.parse(String(doc));
      const source = config.sources[form.name];
      if (source?.type !== 'okta') throw new OktailError('INTERNAL', 'the source did not survive validation');
      return { ok: true, source, config };
    } catch (err) {
      return { ok: false, problems: problemsOf(err, form.name) };
    }
  }

  #precheck(form: SourceForm, mode: 'create' | 'edit', doc: Document): FieldProblem[] {
    const problems: FieldProblem[] = [];
    const exists = isMap(doc.getIn(['sources', form.name]));
    if (mode === 'create' && exists) {
      problems.push({ field: 'name', message: `a source named ${form.name} already exists` });
    }
    if (mode === 'edit' && !exists) {
      problems.push({ field: 'name', message: `there is no source named ${form.name}` });
    }
    if (!(AUTH_STRATEGIES as readonly string[]).includes(form.strategy)) {
      problems.push({ field: 'strategy', message: `must be one of ${AUTH_STRATEGIES.join(', ')}` });
    }
    return problems;
  }

  /**
   * Validates the form and, when it is valid, writes the secrets, the script and the config. The
   * validation sees the secrets inline (so their own rules apply, e.g. no "SSWS " in the token); the
   * file gets references to their files.
   */
  async save(
    form: SourceForm,
    mode: 'create' | 'edit',
    paths: { dataDir: string; scriptProblems: (path: string) => Promise<string[]>; builtinScript: string },
  ): Promise<{ ok: true; config: Config; changed: string[] } | { ok: false; problems: FieldProblem[] }> {
    const { doc } = await this.#read();
    const early = this.#precheck(form, mode, doc);
    if (early.length > 0) return { ok: false, problems: early };
    const before = mode === 'edit' ? doc.getIn(['sources', form.name]) : undefined;
    const beforeJs = isMap(before) ? (before.toJSON() as Record<string, unknown>) : {};

    // 1. Validate with the secrets inline.
    const trialDoc = doc.clone();
    applyForm(trialDoc, form, mode, inlineSecrets(form));
    const problems: FieldProblem[] = [];
    try {
      const trial = this.parse(String(trialDoc)).sources[form.name];
      // As `oktail validate` does: the OAuth key must load (and decrypt with its passphrase) now, not at start.
      if (trial?.type === 'okta' && trial.auth.strategy === 'oauth2') {
        problems.push(...(await keyProblems(form.name, trial.auth)));
      }
    } catch (err) {
      problems.push(...problemsOf(err, form.name));
    }
    // 2. The script, when it differs from the built-in one, checked from its file as validate would.
    const secretsDir = join(paths.dataDir, 'secrets');
    const scriptsDir = join(paths.dataDir, 'scripts');
    let scriptPath: string | null | undefined; // undefined: keep; null: the built-in one
    let scriptTmp: string | null = null;
    if (form.script.trim() === paths.builtinScript.trim()) {
      scriptPath = null;
    } else {
      await mkdir(scriptsDir, { recursive: true, mode: 0o700 });
      scriptTmp = join(scriptsDir, `.${form.name}.lua.tmp`);
      await writeAtomically(scriptTmp, form.script, 0o600, true);
      for (const message of await paths.scriptProblems(scriptTmp)) {
        problems.push({ field: 'script', message });
      }
      scriptPath = join(scriptsDir, `${form.name}.lua`);
    }
    if (problems.length > 0) {
      if (scriptTmp) await rm(scriptTmp, { force: true });
      return { ok: false, problems };
    }

    // 3. Write: secrets and script first, so the config never names a file that is not there.
    const refs: { token?: string; keyPass?: string; privateKeyPass?: string } = {};
    const oauth = form.strategy === 'oauth2';
    if (form.token !== '' && !oauth) {
      const path = join(secretsDir, `${form.name}.token`);
      await writeSecret(secretsDir, path, form.token);
      refs.token = this.#reference(path);
    }
    if (form.key_pass !== '' && form.tls_enabled) {
      const path = join(secretsDir, `${form.name}.key_pass`);
      await writeSecret(secretsDir, path, form.key_pass);
      refs.keyPass = this.#reference(path);
    }
    if (form.private_key_pass !== '' && oauth) {
      const path = join(secretsDir, `${form.name}.private_key_pass`);
      await writeSecret(secretsDir, path, form.private_key_pass);
      refs.privateKeyPass = this.#reference(path);
    }
    if (scriptTmp && scriptPath) {
      await rename(scriptTmp, scriptPath);
      // Durable before the config that names it is: a crash in between must not leave a config naming a
      // script the disk lost.
      await syncDir(scriptsDir);
    }
    applyForm(doc, form, mode, {
      tokenFile: refs.token,
      keyPassFile: refs.keyPass,
      privateKeyPassFile: refs.privateKeyPass,
      script: scriptPath === undefined ? undefined : scriptPath === null ? null : this.#reference(scriptPath),
    });
    const text = String(doc);
    const config = this.parse(text);
    await writeAtomically(this.file, text, undefined, true);
    // The other strategy's secret, written by an earlier save, is no longer referenced: do not keep it.
    await rm(join(secretsDir, `${form.name}.${oauth ? 'token' : 'private_key_pass'}`), { force: true });
    const after = (doc.getIn(['sources', form.name]) as YAMLMap).toJSON() as Record<string, unknown>;
    return { ok: true, config, changed: changedKeys(beforeJs, after, form, mode) };
  }

  /** Disables (`enabled: false`) or enables (the key removed: true is the default) a source. */
  async setEnabled(name: string, enabled: boolean): Promise<Config> {
    const { doc } = await this.#read();
    if (!isMap(doc.getIn(['sources', name]))) {
      throw new OktailError('CONFIG_INVALID', `there is no source named ${name}`);
    }
    if (enabled) {
      if (doc.hasIn(['sources', name, 'enabled'])) doc.deleteIn(['sources', name, 'enabled']);
    } else {
      doc.setIn(['sources', name, 'enabled'], false);
    }
    const text = String(doc);
    const config = this.parse(text);
    await writeAtomically(this.file, text, undefined, true);
    return config;
  }

  /** Removes a source from the config (and from every sink's inputs), and deletes its secret files. */
  async remove(name: string, dataDir: string): Promise<Config> {
    const { doc } = await this.#read();
    if (!isMap(doc.getIn(['sources', name]))) {
      throw new OktailError('CONFIG_INVALID', `there is no source named ${name}`);
    }
    doc.deleteIn(['sources', name]);
    setSinkInputs(doc, name, []);
    const text = String(doc);
    const config = this.parse(text);
    await writeAtomically(this.file, text, undefined, true);
    for (const ext of SECRET_FILES) {
      await rm(join(dataDir, 'secrets', `${name}.${ext}`), { force: true });
    }
    return config;
  }

  /** A path as written into the config: relative to the config file when it lies below it. */
  #reference(path: string): string {
    const rel = relative(this.baseDir, path);
    return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
  }
}

/** The OAuth key's load errors, each beside its field in the loader's words. */
async function keyProblems(name: string, auth: OAuth2AuthConfig): Promise<FieldProblem[]> {
  try {
    // Loaded only here: the JWT stack is not needed by a bearer-only console.
    await (await import('../sources/okta/auth/index.js')).authSettings(name, auth);
    return [];
  } catch (err) {
    if (!(err instanceof OktailError)) throw err;
    const colon = err.message.indexOf(': ');
    const problem = fieldOf(
      { path: err.message.slice(0, colon), line: null, message: err.message.slice(colon + 2) },
      name,
    );
    // A wrong or missing passphrase is fixed in the password field, not the file field.
    if (problem.field === 'private_key_file' && /private_key_pass/.test(problem.message)) {
      return [{ field: 'private_key_pass', message: problem.message }];
    }
    return [problem];
  }
}

const SECRET_FILES = ['token', 'key_pass', 'private_key_pass'];

/** The form's new secrets inline, for validation (never written to a file). */
function inlineSecrets(form: SourceForm): SecretValues {
  return {
    token: inlineSecret(form.token),
    keyPass: inlineSecret(form.key_pass),
    privateKeyPass: inlineSecret(form.private_key_pass),
  };
}

/** A secret as the trial document carries it: `$` doubled so interpolation gives the value back. */
function inlineSecret(value: string): string | undefined {
  return value === '' ? undefined : value.replaceAll('$', '$$');
}

function problemsOf(err: unknown, name: string): FieldProblem[] {
  if (err instanceof ConfigError) return err.problems.map((p) => fieldOf(p, name));
  return [{ field: null, message: errorMessage(err) }];
}

interface SecretValues {
  /** Inline values for a trial (never written to a file). */
  token?: string | undefined;
  keyPass?: string | undefined;
  privateKeyPass?: string | undefined;
  /** References to secret files, for the file. */
  tokenFile?: string | undefined;
  keyPassFile?: string | undefined;
  privateKeyPassFile?: string | undefined;
  /** undefined: keep; null: remove (built-in); else the path. */
  script?: string | null | undefined;
}

/** Sets the source's managed keys in the document, one by one, leaving any other key alone. */
function applyForm(doc: Document, form: SourceForm, mode: 'create' | 'edit', secrets: SecretValues): void {
  let sources = doc.get('sources', true);
  if (!isMap(sources) || sources.items.length === 0) {
    // `sources: {}` of a fresh install becomes a block mapping, not `{ okta: { ... } }` on one line.
    sources = new YAMLMap(doc.schema);
    (sources as YAMLMap).flow = false;
    doc.set('sources', sources);
  }
  const at = (...path: string[]) => ['sources', form.name, ...path];
  if (mode === 'create' || !isMap(doc.getIn(at()))) {
    const node = new YAMLMap(doc.schema);
    node.flow = false;
    (sources as YAMLMap).set(form.name, node);
    doc.setIn(at('type'), 'okta');
  }
  const set = (path: string[], value: unknown) => doc.setIn(at(...path), value);
  const del = (path: string[]) => {
    if (doc.hasIn(at(...path))) doc.deleteIn(at(...path));
  };
  /** Writes a value that has a default only when it differs from it or was written already. */
  const setUnlessDefault = (path: string[], value: unknown, fallback: unknown) => {
    if (value === fallback && !doc.hasIn(at(...path))) return;
    set(path, value);
  };

  set(['domain'], form.domain);
  const interval = form.interval_secs.trim();
  set(['interval_secs'], /^-?\d+(\.\d+)?$/.test(interval) ? Number(interval) : interval);
  if (form.start_from.trim() === '') del(['start_from']);
  else set(['start_from'], form.start_from.trim());

  if (doc.hasIn(at('auth', 'strategy')) || form.strategy !== 'bearer')
    set(['auth', 'strategy'], form.strategy);
  if (!doc.hasIn(at('auth'))) set(['auth'], new YAMLMap(doc.schema));
  if (form.strategy === 'oauth2') {
    for (const key of BEARER_KEYS) del(['auth', key]);
    // Left out when empty, so the loader says "is required" rather than judging an empty value.
    for (const key of ['client_id', 'private_key_file'] as const) {
      if (form[key].trim() === '') del(['auth', key]);
      else set(['auth', key], form[key].trim());
    }
    if (secrets.privateKeyPass !== undefined) {
      del(['auth', 'private_key_pass_file']);
      set(['auth', 'private_key_pass'], secrets.privateKeyPass);
    } else if (secrets.privateKeyPassFile !== undefined) {
      del(['auth', 'private_key_pass']);
      set(['auth', 'private_key_pass_file'], secrets.privateKeyPassFile);
    }
    if (form.key_id.trim() === '') del(['auth', 'key_id']);
    else set(['auth', 'key_id'], form.key_id.trim());
    const scopes = form.scopes.split(/[\s,]+/).filter((s) => s !== '');
    if (scopes.length === 0) {
      del(['auth', 'scopes']);
    } else if (scopes.join(' ') !== DEFAULT_SCOPES.join(' ') || doc.hasIn(at('auth', 'scopes'))) {
      const seq = doc.createNode(scopes) as YAMLSeq;
      seq.flow = true;
      set(['auth', 'scopes'], seq);
    }
    const dpop = form.dpop.trim();
    setUnlessDefault(['auth', 'dpop'], dpop === 'true' ? true : dpop === 'false' ? false : dpop, 'auto');
  } else {
    for (const key of OAUTH_KEYS) del(['auth', key]);
    if (secrets.token !== undefined) {
      del(['auth', 'token_file']);
      set(['auth', 'token'], secrets.token);
    } else if (secrets.tokenFile !== undefined) {
      del(['auth', 'token']);
      set(['auth', 'token_file'], secrets.tokenFile);
    }
    setUnlessDefault(['auth', 'header'], form.header, 'Authorization');
    setUnlessDefault(['auth', 'prefix'], form.prefix, 'SSWS ');
  }

  if (!form.tls_enabled) {
    del(['tls']);
  } else {
    set(['tls', 'enabled'], true);
    for (const key of ['ca_file', 'crt_file', 'key_file'] as const) {
      if (form[key].trim() === '') del(['tls', key]);
      else set(['tls', key], form[key].trim());
    }
    if (form.key_file.trim() === '') {
      del(['tls', 'key_pass']);
      del(['tls', 'key_pass_file']);
    } else if (secrets.keyPass !== undefined) {
      del(['tls', 'key_pass_file']);
      set(['tls', 'key_pass'], secrets.keyPass);
    } else if (secrets.keyPassFile !== undefined) {
      del(['tls', 'key_pass']);
      set(['tls', 'key_pass_file'], secrets.keyPassFile);
    }
    setUnlessDefault(['tls', 'verify_certificate'], form.verify_certificate, true);
    setUnlessDefault(['tls', 'verify_hostname'], form.verify_hostname, true);
  }
  if (secrets.script === null) del(['script']);
  else if (secrets.script !== undefined) set(['script'], secrets.script);

  setSinkInputs(doc, form.name, form.sinks);
}

/** Makes `name` an input of exactly the sinks listed (leaving every other input alone). */
function setSinkInputs(doc: Document, name: string, selected: readonly string[]): void {
  const sinks = doc.get('sinks', true);
  if (!isMap(sinks)) return;
  for (const pair of sinks.items) {
    const sinkName = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const sink = pair.value;
    if (!isMap(sink)) continue;
    const inputs: unknown = sink.get('inputs', true);
    const want = selected.includes(sinkName);
    let seq: YAMLSeq;
    if (isSeq(inputs)) {
      seq = inputs;
    } else {
      if (!want) continue;
      seq = new YAMLSeq(doc.schema);
      seq.flow = true;
      sink.set('inputs', seq);
    }
    const index = seq.items.findIndex((item) => (isScalar(item) ? item.value : item) === name);
    if (want && index < 0) seq.add(doc.createNode(name));
    if (!want && index >= 0) seq.items.splice(index, 1);
  }
}

/** The keys a save changed, for the audit log: names only, never values of secrets. */
function changedKeys(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  form: SourceForm,
  mode: 'create' | 'edit',
): string[] {
  const flat = (obj: unknown, prefix = ''): Map<string, string> => {
    const out = new Map<string, string>();
    if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
      for (const [k, v] of Object.entries(obj)) {
        for (const [kk, vv] of flat(v, prefix === '' ? k : `${prefix}.${k}`)) out.set(kk, vv);
      }
    } else {
      out.set(prefix, JSON.stringify(obj));
    }
    return out;
  };
  const a = flat(before);
  const b = flat(after);
  const keys = new Set([...a.keys(), ...b.keys()]);
  const changed = [...keys].filter((k) => a.get(k) !== b.get(k));
  // A secret replaced in its file changes no key; it is still a change worth recording.
  if (mode === 'edit' && form.token !== '' && !changed.includes('auth.token_file'))
    changed.push('auth.token');
  if (mode === 'edit' && form.key_pass !== '' && !changed.includes('tls.key_pass_file')) {
    changed.push('tls.key_pass');
  }
  if (
    mode === 'edit' &&
    form.strategy === 'oauth2' &&
    form.private_key_pass !== '' &&
    !changed.includes('auth.private_key_pass_file')
  ) {
    changed.push('auth.private_key_pass');
  }
  return changed.sort();
}

async function writeSecret(dir: string, path: string, value: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await writeAtomically(path, value + '\n', 0o600, true);
}

/**
 * Temp file, fsync, rename, and with `sync` an fsync of the directory too: a crash leaves the old file
 * or the new one. Keeps an existing file's mode.
 */
export async function writeAtomically(
  path: string,
  text: string,
  mode: number | undefined,
  sync: boolean,
): Promise<void> {
  let fileMode = mode;
  if (fileMode === undefined) {
    try {
      fileMode = (await stat(path)).mode & 0o777;
    } catch {
      fileMode = 0o644;
    }
  }
  const tmp = `${path}.${process.pid}.tmp`;
  const file = await open(tmp, 'w', fileMode);
  try {
    await file.chmod(fileMode);
    await file.writeFile(text);
    if (sync) await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
  // The rename lasts only once the directory is on disk: until then a crash may bring back the old file
  // (or, for a new one, none).
  if (sync) await syncDir(dirname(path));
}
