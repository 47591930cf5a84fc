import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { collect, spawnCli, until, type CliResult, type TestOrg } from './harness.js';

/*
 * A real headless Chromium (Debian's `chromium` package, which .ci/run installs) driven by
 * playwright-core through its executablePath: no browser download. Every response body the browser
 * receives is kept, so a test can check that no secret ever reached the page.
 */

export const CHROMIUM = '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

export interface BrowserSession {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Bodies (as text) of every response the browser received, with their URLs. */
  bodies: { url: string; status: number; body: string }[];
  close(): Promise<void>;
}

export async function openBrowser(): Promise<BrowserSession> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox needs user namespaces, which a root CI container does not grant.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const bodies: BrowserSession['bodies'] = [];
  const pending: Promise<void>[] = [];
  page.on('response', (response) => {
    pending.push(
      response
        .body()
        .then((body) => {
          bodies.push({ url: response.url(), status: response.status(), body: body.toString('utf8') });
        })
        // Redirects have no body to read.
        .catch(() => {
          bodies.push({ url: response.url(), status: response.status(), body: '' });
        }),
    );
  });
  return {
    browser,
    context,
    page,
    bodies,
    async close() {
      await Promise.allSettled(pending);
      await browser.close();
    },
  };
}

/** The text of the error shown beside the field with this label (its aria-describedby error slot). */
export async function fieldError(page: Page, label: string): Promise<string> {
  const input = page.getByLabel(label, { exact: true });
  const id = await input.getAttribute('id');
  const error = page.locator(`[id="${id}-error"]`);
  return (await error.isVisible()) ? ((await error.textContent()) ?? '') : '';
}

export interface ConsoleCollector {
  proc: ChildProcess;
  done: Promise<CliResult>;
  stderr: () => string;
  /** The sign-in URL the collector logged. */
  signIn: string;
  origin: string;
}

/** A config with the console on a free loopback port, a file sink and no source yet. */
export async function writeConsoleConfig(
  org: TestOrg,
  extra: string[] = [],
): Promise<{ file: string; out: string }> {
  const out = join(org.dir, 'out', 'okta.ndjson');
  const file = join(org.dir, 'oktail.yaml');
  await writeFile(
    file,
    [
      '# oktail config for the console tests; this comment must survive edits.',
      `data_dir: ${JSON.stringify(join(org.dir, 'data'))}`,
      'console:',
      '  address: 127.0.0.1:0',
      ...extra,
      'sources: {}',
      'sinks:',
      '  archive: # the file sink',
      '    type: file',
      '    inputs: []',
      `    path: ${JSON.stringify(out)}`,
      '',
    ].join('\n'),
  );
  return { file, out };
}

/** `oktail run` with the console, resolved once the sign-in URL is logged. */
export async function startConsoleCollector(
  file: string,
  track: (c: ChildProcess) => ChildProcess,
  env: Record<string, string | undefined> = {},
): Promise<ConsoleCollector> {
  const proc = track(spawnCli(['run', '-c', file, '--log-format', 'json'], env));
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer | string) => (stderr += d.toString()));
  const done = collect(proc, performance.now(), 600_000);
  let exited = false;
  void done.finally(() => (exited = true));
  let signIn = '';
  await until(
    () => {
      if (exited) throw new Error(`collector exited early:\n${stderr}`);
      const m = /Console: sign in at (\S+?\/\?token=[A-Za-z0-9_%-]+)/.exec(stderr);
      if (m) signIn = m[1]!;
      return signIn !== '';
    },
    'the sign-in URL',
    60_000,
  );
  return { proc, done, stderr: () => stderr, signIn, origin: new URL(signIn).origin };
}

/** The log lines of a JSON-logging collector. */
export function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
