import { readFile } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Config } from '../config/schema.js';
import { NAME_PATTERN } from '../config/schema.js';
import { PromiseLock } from '../core/async.js';
import { errorMessage } from '../core/errors.js';
import { FileCheckpointStore } from '../pipeline/checkpoint-file.js';
import type { Logger } from '../telemetry/logger.js';
import type { ConfigFile, SourceForm } from './config-file.js';
import { SourceController } from './controller.js';
import { testConnection } from './connection.js';
import type { ConsoleStatus, SourceStatus } from './status.js';
import { ConsoleAuth } from './token.js';
import { listen } from '../telemetry/listen.js';

/*
 * The web console: a few HTML pages and a JSON API on node:http. Nothing is served without a session
 * except the sign-in page and the static assets (which hold no data). A session comes only from the
 * access token (`/?token=`) and lives in an HttpOnly, SameSite=Strict cookie; every state-changing
 * request must also come from the console's own origin (CSRF). Every change is logged with the keys it
 * changed, never with values of secrets.
 */

export const SESSION_COOKIE = 'oktail_session';
const MAX_BODY = 1024 * 1024;
// Through `../console/`: the same folder from dist/console/ and from a chunk of dist/bundle/.
const STATIC_DIR = new URL('../console/static/', import.meta.url);
const ASSETS: Record<string, string> = {
  '/assets/app.js': 'text/javascript; charset=utf-8',
  '/assets/app.css': 'text/css; charset=utf-8',
};

export interface ConsoleServerOptions {
  host: string;
  port: number;
  tls?: { cert: Buffer; key: Buffer } | undefined;
  dataDir: string;
  configFile: ConfigFile;
  config: Config;
  status: ConsoleStatus;
  controller: SourceController;
  log: Logger;
  builtinScript: string;
  /** Problems of a collection script file, as `oktail validate` words them ("line N: ..."). */
  scriptProblems(path: string): Promise<string[]>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class ConsoleServer {
  readonly #o: ConsoleServerOptions;
  readonly #auth: ConsoleAuth;
  #config: Config;
  #server: Server | null = null;
  #origin = '';
  /** One config change at a time: each reads, changes and replaces the whole file. */
  readonly #changes = new PromiseLock();

  constructor(options: ConsoleServerOptions) {
    this.#o = options;
    this.#config = options.config;
    this.#auth = new ConsoleAuth(options.dataDir);
  }

  /** Listens; returns the origin it answers on (e.g. http://127.0.0.1:8686). */
  async start(): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (err instanceof HttpError) {
          sendJson(res, err.status, { error: err.message });
          return;
        }
        this.#o.log.warn({ error: errorMessage(err) }, 'Console request failed.');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error; see the collector log' });
        else res.destroy();
      });
    };
    const server = this.#o.tls ? createHttpsServer({ ...this.#o.tls }, handler) : createHttpServer(handler);
    const authority = await listen(server, this.#o.host, this.#o.port);
    this.#server = server;
    this.#origin = `${this.#o.tls ? 'https' : 'http'}://${authority}`;
    return this.#origin;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';

    if (method === 'GET' && ASSETS[path]) {
      const body = await readFile(new URL(`.${path.slice('/assets'.length)}`, STATIC_DIR));
      send(res, 200, ASSETS[path], body, 'public, max-age=300');
      return;
    }
    if (method === 'GET' && path === '/favicon.ico') {
      send(res, 204, 'text/plain', Buffer.alloc(0));
      return;
    }
    if (method === 'GET' && path === '/') {
      await this.#signIn(req, res, url);
      return;
    }

    const session = await this.#auth.verifySession(cookie(req, SESSION_COOKIE));
    const isApi = path.startsWith('/api/');
    if (!session) {
      if (isApi) sendJson(res, 401, { error: 'not signed in: open the sign-in URL from the collector log' });
      else sendHtml(res, 401, signInPage('You are not signed in.'));
      return;
    }
    if (!['GET', 'HEAD'].includes(method)) {
      const origin = req.headers.origin;
      if (origin === undefined || origin !== this.#expectedOrigin(req)) {
        this.#o.log.warn(
          { console: true, method, path, origin: origin ?? null },
          'Console: refused a cross-origin request.',
        );
        sendJson(res, 403, { error: 'cross-origin request refused' });
        return;
      }
    }
    if (!isApi) {
      if (method !== 'GET' || !isPagePath(path)) {
        sendHtml(res, 404, page('Not found', '<p>No such page. <a href="/sources">Sources</a></p>'));
        return;
      }
      sendHtml(res, 200, appShell());
      return;
    }
    await this.#api(req, res, method, path, url);
  }

  /** The origin a browser on this console sends: the scheme we serve and the Host it asked for. */
  #expectedOrigin(req: IncomingMessage): string {
    return `${this.#o.tls ? 'https' : 'http'}://${req.headers.host ?? ''}`;
  }

  async #signIn(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const token = url.searchParams.get('token');
    if (token !== null) {
      if (!(await this.#auth.verifyToken(token))) {
        this.#o.log.warn(
          { console: true, remote: req.socket.remoteAddress },
          'Console: sign-in with a wrong token.',
        );
        sendHtml(res, 401, signInPage('This sign-in link is not valid (any more).'));
        return;
      }
      const value = await this.#auth.newSession();
      const secure = this.#o.tls ? '; Secure' : '';
      this.#o.log.info({ console: true, remote: req.socket.remoteAddress }, 'Console: signed in.');
      // The redirect drops the token from the address bar and the history.
      res.writeHead(303, {
        location: '/sources',
        'set-cookie': `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/${secure}`,
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
        'content-length': 0,
      });
      res.end();
      return;
    }
    if (await this.#auth.verifySession(cookie(req, SESSION_COOKIE))) {
      res.writeHead(303, { location: '/sources', 'content-length': 0 });
      res.end();
      return;
    }
    sendHtml(res, 401, signInPage('Sign in with the link the collector logged.'));
  }

  async #api(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    path: string,
    url: URL,
  ): Promise<void> {
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent); // ['api', ...]
    if (method === 'GET' && path === '/api/sources') {
      sendJson(res, 200, { sources: this.#sourceList() });
      return;
    }
    if (method === 'GET' && path === '/api/form') {
      sendJson(res, 200, {
        sinks: Object.entries(this.#config.sinks).map(([name, s]) => ({ name, type: s.type })),
        script: this.#o.builtinScript,
      });
      return;
    }
    if (method === 'POST' && path === '/api/test') {
      const { form, mode } = await readForm(req);
      const trial = await this.#o.configFile.trial(form, mode);
      if (!trial.ok) {
        sendJson(res, 200, { ok: false, problems: trial.problems, layers: [] });
        return;
      }
      const result = await testConnection(form.name, trial.source, trial.config.proxy);
      this.#o.log.info(
        { console: true, source: form.name, ok: result.ok },
        'Console: tested the connection.',
      );
      sendJson(res, 200, { ...result, problems: [] });
      return;
    }
    if (method === 'POST' && path === '/api/sources') {
      const { form } = await readForm(req);
      await this.#changes.run(() => this.#save(res, form, 'create'));
      return;
    }
    if (parts.length === 4 && parts[1] === 'sources' && method === 'POST') {
      const name = parts[2] ?? '';
      const action = parts[3];
      if (action === 'disable' || action === 'enable') {
        await this.#changes.run(() => this.#setEnabled(res, name, action === 'enable'));
        return;
      }
    }
    if (parts.length === 3 && parts[1] === 'sources') {
      const name = parts[2] ?? '';
      if (method === 'GET') {
        await this.#sourceDetail(res, name);
        return;
      }
      if (method === 'PUT') {
        const { form } = await readForm(req);
        if (form.name !== name) throw new HttpError(400, 'a source cannot be renamed');
        await this.#changes.run(() => this.#save(res, form, 'edit'));
        return;
      }
      if (method === 'DELETE') {
        const forget = url.searchParams.get('forget') === 'true';
        await this.#changes.run(() => this.#delete(res, name, forget));
        return;
      }
    }
    sendJson(res, 404, { error: 'no such API' });
  }

  #sourceList(): (SourceStatus & { configured: boolean })[] {
    const names = [...new Set([...Object.keys(this.#config.sources), ...this.#o.status.names()])];
    return names.map((name) => {
      const status =
        this.#o.status.status(name) ?? emptyStatus(name, this.#config.sources[name]?.domain ?? '');
      return { ...status, configured: this.#config.sources[name] !== undefined };
    });
  }

  async #sourceDetail(res: ServerResponse, name: string): Promise<void> {
    const cfg = this.#config.sources[name];
    const status = this.#o.status.status(name);
    if (!cfg && !status) {
      sendJson(res, 404, { error: `there is no source named ${name}` });
      return;
    }
    const checkpoint = (await new FileCheckpointStore(this.#o.dataDir).load()).sources[name] ?? null;
    const form = cfg ? await this.#o.configFile.formValues(name, this.#config, this.#o.builtinScript) : null;
    sendJson(res, 200, {
      status: status ?? emptyStatus(name, cfg?.domain ?? ''),
      events: this.#o.status.recentEvents(name),
      checkpoint,
      enabled: cfg?.enabled !== false,
      form,
    });
  }

  async #save(res: ServerResponse, form: SourceForm, mode: 'create' | 'edit'): Promise<void> {
    if (!NAME_PATTERN.test(form.name)) {
      sendJson(res, 422, {
        ok: false,
        problems: [{ field: 'name', message: 'must be 1 to 64 letters, digits, _ or -' }],
      });
      return;
    }
    const result = await this.#o.configFile.save(form, mode, {
      dataDir: this.#o.dataDir,
      scriptProblems: (path) => this.#o.scriptProblems(path),
      builtinScript: this.#o.builtinScript,
    });
    if (!result.ok) {
      sendJson(res, 422, { ok: false, problems: result.problems });
      return;
    }
    this.#config = result.config;
    this.#o.log.info(
      {
        console: true,
        action: mode === 'create' ? 'add' : 'edit',
        source: form.name,
        changed: result.changed,
      },
      mode === 'create' ? 'Console: source added to the config.' : 'Console: source changed in the config.',
    );
    const cfg = result.config.sources[form.name]!;
    const sinks = SourceController.sinksOf(result.config, form.name);
    let started: string | null = null;
    try {
      if (cfg.enabled === false) await this.#o.controller.disable(form.name, cfg.domain);
      else if (mode === 'create') await this.#o.controller.start(form.name, cfg, sinks);
      else await this.#o.controller.replace(form.name, cfg, sinks);
    } catch (err) {
      started = errorMessage(err);
    }
    sendJson(res, 200, { ok: true, started: started === null, error: started });
  }

  async #setEnabled(res: ServerResponse, name: string, enabled: boolean): Promise<void> {
    const cfg = this.#config.sources[name];
    if (!cfg) {
      sendJson(res, 404, { error: `there is no source named ${name}` });
      return;
    }
    this.#config = await this.#o.configFile.setEnabled(name, enabled);
    this.#o.log.info(
      { console: true, action: enabled ? 'enable' : 'disable', source: name, changed: ['enabled'] },
      enabled ? 'Console: source enabled.' : 'Console: source disabled.',
    );
    let error: string | null = null;
    try {
      if (enabled) {
        await this.#o.controller.replace(
          name,
          this.#config.sources[name]!,
          SourceController.sinksOf(this.#config, name),
        );
      } else {
        await this.#o.controller.disable(name, cfg.domain);
      }
    } catch (err) {
      error = errorMessage(err);
    }
    sendJson(res, 200, { ok: true, started: error === null, error });
  }

  async #delete(res: ServerResponse, name: string, forget: boolean): Promise<void> {
    if (!this.#config.sources[name]) {
      sendJson(res, 404, { error: `there is no source named ${name}` });
      return;
    }
    this.#config = await this.#o.configFile.remove(name, this.#o.dataDir);
    await this.#o.controller.stop(name, forget);
    this.#o.log.info(
      { console: true, action: 'delete', source: name, checkpoint: forget ? 'forgotten' : 'kept' },
      'Console: source removed from the config.',
    );
    sendJson(res, 200, { ok: true });
  }
}

function emptyStatus(name: string, domain: string): SourceStatus {
  return {
    name,
    domain,
    state: 'stopped',
    message: null,
    events: 0,
    eventsPerSecond: 0,
    lagSecs: null,
    rateLimit: null,
    lastSuccess: null,
    perMinute: new Array<number>(60).fill(0),
    errors: [],
  };
}

function isPagePath(path: string): boolean {
  return (
    path === '/sources' || path === '/sources/new' || /^\/sources\/[A-Za-z0-9_-]{1,64}(\/edit)?$/.test(path)
  );
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/json')) throw new HttpError(415, 'send application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'request too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the body is not JSON');
  }
}

async function readForm(req: IncomingMessage): Promise<{ form: SourceForm; mode: 'create' | 'edit' }> {
  const body = (await readBody(req)) as Record<string, unknown> | null;
  if (!body || typeof body !== 'object') throw new HttpError(400, 'expected a JSON object');
  const str = (key: string): string => {
    const v = body[key];
    return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
  };
  const bool = (key: string, fallback: boolean): boolean =>
    typeof body[key] === 'boolean' ? body[key] : fallback;
  const sinks = Array.isArray(body.sinks) ? body.sinks.filter((s): s is string => typeof s === 'string') : [];
  const form: SourceForm = {
    name: str('name').trim(),
    domain: str('domain').trim(),
    interval_secs: str('interval_secs'),
    start_from: str('start_from'),
    strategy: str('strategy') || 'bearer',
    token: str('token'),
    header: str('header') || 'Authorization',
    prefix: typeof body.prefix === 'string' ? body.prefix : 'SSWS ',
    client_id: str('client_id'),
    private_key_file: str('private_key_file'),
    private_key_pass: str('private_key_pass'),
    key_id: str('key_id'),
    scopes: str('scopes'),
    dpop: typeof body.dpop === 'boolean' ? String(body.dpop) : str('dpop') || 'auto',
    tls_enabled: bool('tls_enabled', false),
    ca_file: str('ca_file'),
    crt_file: str('crt_file'),
    key_file: str('key_file'),
    key_pass: str('key_pass'),
    verify_certificate: bool('verify_certificate', true),
    verify_hostname: bool('verify_hostname', true),
    script: str('script'),
    sinks,
  };
  return { form, mode: body.mode === 'edit' ? 'edit' : 'create' };
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return undefined;
}

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: Buffer,
  cache = 'no-store',
): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': contentType,
    'content-length': body.length,
    'cache-control': cache,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', Buffer.from(JSON.stringify(value)));
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  send(res, status, 'text/html; charset=utf-8', Buffer.from(html));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · oktail</title>
<link rel="stylesheet" href="/assets/app.css">
</head>
<body>
<header class="top"><span class="brand">oktail</span></header>
<main id="main">${body}</main>
</body>
</html>
`;
}

function signInPage(reason: string): string {
  return page(
    'Sign in',
    `<h1>Sign in</h1>
<p>${escapeHtml(reason)}</p>
<p>Open the sign-in URL (<code>/?token=…</code>) that the collector wrote to its log when the console was first
started. To make a new one, run <code>oktail console token --rotate -c FILE</code> on the collector's machine.</p>`,
  );
}

/** Every page of the console: the script draws the view the path names. */
function appShell(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>oktail console</title>
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/app.js" defer></script>
</head>
<body>
<header class="top">
<span class="brand">oktail</span>
<nav aria-label="Main"><a href="/sources" class="tab" aria-current="page">Sources</a></nav>
</header>
<main id="main" tabindex="-1"><p>Loading…</p></main>
</body>
</html>
`;
}
