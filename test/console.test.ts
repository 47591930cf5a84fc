import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import {
  fieldError,
  logLines,
  openBrowser,
  startConsoleCollector,
  writeConsoleConfig,
  type BrowserSession,
  type ConsoleCollector,
} from './support/browser.js';
import { HOUR, ago, readLines, runCli, sleep, startOrg, until, type TestOrg } from './support/harness.js';
import type { ChildProcess } from 'node:child_process';

/*
 * End to end in a real headless Chromium: a collector starts with the console and no source; a person
 * signs in with the logged URL, adds an Okta source against the emulator, tests the connection, saves,
 * watches the events arrive, edits the interval and deletes the source. One story, step by step: each
 * step starts where the previous one left the browser and the collector.
 */

const BACKLOG = 320;
const LATER = 40;
const WHILE_DISABLED = 10;

let org: TestOrg;
let collector: ConsoleCollector;
let session: BrowserSession;
let page: Page;
let file: string;
let out: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  org = await startOrg();
  org.emulator.appendEvents(BACKLOG, { publishedStart: Date.now() - HOUR, stepMs: 5000 });
  ({ file, out } = await writeConsoleConfig(org));
  // No OKTA_API_TOKEN: the token is typed into the browser.
  collector = await startConsoleCollector(file, (c) => (children.push(c), c), { OKTA_API_TOKEN: undefined });
  session = await openBrowser();
  page = session.page;
  page.setDefaultTimeout(Number(process.env.PW_TIMEOUT ?? 60_000));
}, 120_000);

afterAll(async () => {
  await session?.close();
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await collector?.done.catch(() => {});
  await org?.stop();
}, 60_000);

/** The number in the Sources tab's "Events collected" cell of a source. */
async function eventsCollected(name: string): Promise<number> {
  const cell = page.locator(`tr[data-source="${name}"] td[data-col="events"]`);
  if ((await cell.count()) === 0) return -1;
  return Number(((await cell.textContent()) ?? '').replace(/,/g, ''));
}

async function openAddForm(): Promise<void> {
  await page.goto(`${collector.origin}/sources`);
  await page.getByRole('link', { name: 'Add Source' }).click();
  await page.getByRole('button', { name: /Okta Logs Collector/ }).click();
  await page.getByLabel('Source Name', { exact: true }).waitFor();
}

/** The README's pictures: `OKTAIL_SCREENSHOTS=1 npx vitest run test/console.test.ts` rewrites them. */
async function screenshots(): Promise<void> {
  const docs = join(import.meta.dirname, '..', 'docs');
  await page.goto(`${collector.origin}/sources`);
  await page.locator('tr[data-source="okta"]').waitFor();
  await page.screenshot({
    path: join(docs, 'console-sources.png'),
    clip: { x: 0, y: 0, width: 1280, height: 240 },
  });
  await page.goto(`${collector.origin}/sources/okta`);
  await page.getByRole('table', { name: 'Recent events' }).locator('tbody tr.event').first().waitFor();
  await page.screenshot({ path: join(docs, 'console-source.png'), fullPage: false });
  await page.goto(`${collector.origin}/sources/okta/edit`);
  await page.getByLabel('Okta Domain').waitFor();
  await page.screenshot({ path: join(docs, 'console-add-source.png'), fullPage: false });
  await page.goto(`${collector.origin}/sources/okta`);
  await page.getByRole('table', { name: 'Recent events' }).locator('tbody tr.event').first().waitFor();
}

describe('the web console in a browser', { timeout: 180_000 }, () => {
  it('signs in with the logged URL and lands on the Sources tab', async () => {
    await page.goto(collector.signIn);
    await page.waitForURL(`${collector.origin}/sources`);
    await page.getByRole('heading', { name: 'Sources' }).waitFor();
    await page.getByText('No sources yet').waitFor();
    const cookies = await session.context.cookies();
    expect(cookies.find((c) => c.name === 'oktail_session')).toMatchObject({
      httpOnly: true,
      sameSite: 'Strict',
    });
  });

  it('shows the form with every section and label, prefilled with the defaults and the built-in script', async () => {
    await openAddForm();
    for (const legend of [
      'General Settings',
      'Authentication',
      'TLS Configuration',
      'Advanced Settings',
      'Deliver To',
    ]) {
      await page.locator('legend', { hasText: legend }).waitFor();
    }
    expect(await page.getByLabel('Collection Interval (seconds)').inputValue()).toBe('120');
    expect(await page.getByLabel('Bearer Header').inputValue()).toBe('Authorization');
    expect(await page.getByLabel('Bearer Token Prefix').inputValue()).toBe('SSWS ');
    expect(await page.getByLabel('Auth Token').getAttribute('type')).toBe('password');
    expect(await page.getByLabel('Authentication Strategy').inputValue()).toBe('bearer');
    expect(await page.getByText('SSWS·', { exact: true }).count()).toBe(1);
    const builtin = await readFile(join(import.meta.dirname, '..', 'src', 'script', 'okta.lua'), 'utf8');
    expect(await page.getByLabel('Okta Collection Script').inputValue()).toBe(builtin);
    // TLS settings appear with the toggle.
    expect(await page.getByLabel('CA Certificate File').isVisible()).toBe(false);
    await page.getByLabel('Use custom TLS').check();
    for (const label of [
      'CA Certificate File',
      'Certificate File',
      'Private Key File',
      'Private Key Password',
    ]) {
      expect(await page.getByLabel(label, { exact: true }).isVisible(), label).toBe(true);
    }
    expect(await page.getByLabel('Verify Certificate').isChecked()).toBe(true);
    expect(await page.getByLabel('Verify Hostname').isChecked()).toBe(true);
    expect(await page.getByLabel('archive (file)').isChecked()).toBe(true);
    // OAuth 2.0 puts its fields in place of the Bearer ones (and back).
    const auth = page.locator('fieldset', { has: page.locator('legend', { hasText: 'Authentication' }) });
    await page.getByLabel('Authentication Strategy').selectOption({ label: 'OAuth 2.0' });
    for (const label of [
      'Client ID',
      'Private Key File',
      'Private Key Password',
      'Key ID',
      'Scopes',
      'DPoP',
    ]) {
      expect(await auth.getByLabel(label, { exact: true }).isVisible(), label).toBe(true);
    }
    expect(await auth.getByLabel('Private Key Password', { exact: true }).getAttribute('type')).toBe(
      'password',
    );
    expect(await auth.getByLabel('Scopes').inputValue()).toBe('okta.logs.read');
    expect(await auth.getByLabel('DPoP').inputValue()).toBe('auto');
    expect(await page.getByLabel('Auth Token').count()).toBe(0);
    expect(await page.getByLabel('Bearer Header').count()).toBe(0);
    await page.getByLabel('Authentication Strategy').selectOption({ label: 'Bearer Authentication' });
    expect(await page.getByLabel('Auth Token').isVisible()).toBe(true);
    expect(await page.getByLabel('Client ID').count()).toBe(0);
  });

  it('shows field errors for https:// in the domain and an interval of 5, in the words of oktail validate', async () => {
    await openAddForm();
    await page.getByLabel('Source Name').fill('okta');
    await page.getByLabel('Okta Domain').fill(`https://${org.domain}`);
    await page.getByLabel('Collection Interval (seconds)').fill('5');
    await page.getByLabel('Auth Token').fill(org.token);
    await page.getByRole('button', { name: 'Save' }).click();
    await until(async () => (await fieldError(page, 'Okta Domain')) !== '', 'the domain error');
    // The same config through `oktail validate` gives the same words.
    const check = join(org.dir, 'check.yaml');
    await import('node:fs/promises').then((fs) =>
      fs.writeFile(
        check,
        [
          'sources:',
          '  okta:',
          '    type: okta',
          `    domain: "https://${org.domain}"`,
          '    interval_secs: 5',
          '    auth: { token: "${OKTA_API_TOKEN}" }',
          'sinks:',
          '  out: { type: stdout, inputs: [okta] }',
        ].join('\n'),
      ),
    );
    const validate = await runCli(['validate', '-c', check], { env: org.env });
    const domainError = await fieldError(page, 'Okta Domain');
    const intervalError = await fieldError(page, 'Collection Interval (seconds)');
    expect(domainError).toMatch(/remove the scheme/);
    expect(intervalError).toMatch(/must be between 10 and 86401/);
    expect(validate.stderr).toContain(`sources.okta.domain (line 4): ${domainError}`);
    expect(validate.stderr).toContain(`sources.okta.interval_secs (line 5): ${intervalError}`);
    expect(await fieldError(page, 'Source Name')).toBe('');
    // Nothing was written.
    expect(await readFile(file, 'utf8')).not.toMatch(/^ {2}okta:/m);
  });

  it('Test Connection with a wrong token says "Authentication failed - check OKTA_API_TOKEN"', async () => {
    await openAddForm();
    await page.getByLabel('Source Name').fill('okta');
    await page.getByLabel('Okta Domain').fill(org.domain);
    await page.getByLabel('Auth Token').fill('00wrongTokenValue123');
    await page.getByLabel('Use custom TLS').check();
    await page.getByLabel('CA Certificate File').fill(org.files.caFile);
    await page.getByRole('button', { name: 'Test Connection' }).click();
    const result = page.getByRole('status').filter({ hasText: 'Connection test' });
    await result.getByText('Connection test failed').waitFor();
    const text = (await result.textContent()) ?? '';
    expect(text).toContain('Authentication failed - check OKTA_API_TOKEN');
    expect(text).toContain('What to do:');
    expect(await result.locator('li[data-ok="false"]').count()).toBe(1);
    expect(await result.locator('li[data-ok="true"]').filter({ hasText: 'DNS' }).count()).toBe(1);
  });

  it('Test Connection passes layer by layer with the right token', async () => {
    await page.getByLabel('Auth Token').fill(org.token);
    await page.getByRole('button', { name: 'Test Connection' }).click();
    const result = page.getByRole('status').filter({ hasText: 'Connection test' });
    await result.getByText('Connection test passed').waitFor();
    const layers = result.locator('li');
    expect(await result.locator('li[data-ok="false"]').count()).toBe(0);
    const texts = await layers.allTextContents();
    expect(texts.some((t) => t.startsWith('✓DNS:'))).toBe(true);
    expect(texts.some((t) => t.includes('TCP and TLS: connected'))).toBe(true);
    expect(texts.some((t) => t.includes('HTTP: 200'))).toBe(true);
    expect(texts.some((t) => /Rate limit: \d+ of \d+ requests left/.test(t))).toBe(true);
  });

  it('Save starts collection at once; the Sources tab counts up to the whole backlog', async () => {
    await page.getByLabel('Collection Interval (seconds)').fill('3600');
    await page.getByLabel('Start From').fill(ago(2 * HOUR));
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(`${collector.origin}/sources/okta`);
    await page.goto(`${collector.origin}/sources`);
    await until(
      async () => (await eventsCollected('okta')) === BACKLOG,
      'the backlog in the Sources tab',
      120_000,
    );
    await until(
      async () => ((await page.locator('tr[data-source="okta"]').textContent()) ?? '').includes('caught up'),
      'the source to show caught up',
      60_000,
    );
    // The file sink has every event once.
    const lines = await readLines(out);
    expect(lines).toHaveLength(BACKLOG);
    expect(new Set(lines.map((l) => (JSON.parse(l) as { uuid: string }).uuid)).size).toBe(BACKLOG);
    // The config keeps its comment; the token is in a mode-0600 file, not in the config.
    const config = await readFile(file, 'utf8');
    expect(config).toContain('# oktail config for the console tests; this comment must survive edits.');
    expect(config).toContain('# the file sink');
    expect(config).toMatch(/inputs: \[ okta \]|inputs: \[okta\]/);
    expect(config).not.toContain(org.token);
    const tokenFile = join(org.dir, 'data', 'secrets', 'okta.token');
    expect(config).toContain('token_file: data/secrets/okta.token');
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    expect(
      logLines(collector.stderr()).find((l) => l.msg === 'Console: source added to the config.'),
    ).toMatchObject({
      source: 'okta',
      action: 'add',
    });
    // `oktail validate` accepts what the console wrote.
    const validate = await runCli(['validate', '-c', file]);
    expect(validate.code).toBe(0);
  });

  it('the source page shows the status, a chart, the last 50 events with their JSON, and the checkpoint', async () => {
    await page.getByRole('link', { name: 'okta', exact: true }).click();
    await page.waitForURL(`${collector.origin}/sources/okta`);
    await page.getByRole('img', { name: /Events per minute over the last hour: 320 in total/ }).waitFor();
    const rows = page.getByRole('table', { name: 'Recent events' }).locator('tbody tr.event');
    await until(async () => (await rows.count()) === 50, 'the 50 recent events');
    const newest = (await readLines(out)).at(-1)!;
    const event = JSON.parse(newest) as { uuid: string; eventType: string; published: string };
    const first = rows.first();
    expect(await first.textContent()).toContain(event.eventType);
    expect(await first.textContent()).toContain(event.published);
    await first.click();
    const json = page.getByLabel('Event JSON');
    await json.waitFor();
    expect(await json.textContent()).toContain(event.uuid);
    const checkpoint = (await page.getByLabel('Checkpoint JSON').textContent()) ?? '';
    expect(checkpoint).toContain(org.domain);
    expect(checkpoint).toContain('committed_at');
    if (process.env.OKTAIL_SCREENSHOTS) await screenshots();
    // `state show` reads the checkpoint beside the running collector.
    const show = await runCli(['state', 'show', '-c', file]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('okta');
  });

  it('editing the interval takes effect: new events arrive at the new interval, the secret stays write-only', async () => {
    await page.getByRole('link', { name: 'Edit' }).click();
    await page.waitForURL(`${collector.origin}/sources/okta/edit`);
    const interval = page.getByLabel('Collection Interval (seconds)');
    expect(await interval.inputValue()).toBe('3600');
    // The token shows as "set" with a Replace action; its value is nowhere in the page.
    await page.getByRole('button', { name: 'Replace' }).waitFor();
    expect(await page.content()).not.toContain(org.token);
    await interval.fill('10');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(`${collector.origin}/sources/okta`);
    expect(await readFile(file, 'utf8')).toContain('interval_secs: 10');
    const edit = logLines(collector.stderr()).find((l) => l.msg === 'Console: source changed in the config.');
    expect(edit).toMatchObject({ source: 'okta', changed: ['interval_secs'] });
    // Once the restarted source finished its first cycle, later events come only from the next cycle:
    // with the old interval (an hour) they would not arrive within this test's time.
    await page.goto(`${collector.origin}/sources`);
    await until(
      async () => ((await page.locator('tr[data-source="okta"]').textContent()) ?? '').includes('caught up'),
      'the restarted source to catch up',
      60_000,
    );
    org.emulator.appendEvents(LATER, { publishedStart: Date.now() - 2000, stepMs: 1 });
    await until(
      async () => (await eventsCollected('okta')) === BACKLOG + LATER,
      'the later events in the Sources tab',
      120_000,
    );
    const lines = await readLines(out);
    expect(lines).toHaveLength(BACKLOG + LATER);
    expect(new Set(lines.map((l) => (JSON.parse(l) as { uuid: string }).uuid)).size).toBe(BACKLOG + LATER);
  });

  it('disable stops the source and keeps it in the config; enable resumes it from its checkpoint', async () => {
    await page.goto(`${collector.origin}/sources/okta`);
    await page.getByRole('button', { name: 'Disable' }).click();
    await page.getByText('Disabled: the source stopped').waitFor();
    expect(await readFile(file, 'utf8')).toMatch(/^ {4}enabled: false$/m);
    await page.getByRole('button', { name: 'Enable' }).waitFor();
    await until(
      async () => ((await page.locator('dl.facts').textContent()) ?? '').includes('disabled'),
      'the disabled status',
    );
    // What arrives in the org meanwhile is collected once the source is enabled again.
    org.emulator.appendEvents(WHILE_DISABLED, { publishedStart: Date.now() - 2000, stepMs: 1 });
    await page.getByRole('button', { name: 'Enable' }).click();
    await page.getByText('Enabled: the source collects again').waitFor();
    expect(await readFile(file, 'utf8')).not.toMatch(/^ {4}enabled:/m);
    await until(
      async () => (await readLines(out)).length === BACKLOG + LATER + WHILE_DISABLED,
      'the events that arrived while disabled',
      120_000,
    );
    expect(logLines(collector.stderr()).map((l) => l.msg)).toEqual(
      expect.arrayContaining(['Console: source disabled.', 'Console: source enabled.']),
    );
  });

  it('delete (with a confirmation) stops the source, removes it from the config and forgets its checkpoint', async () => {
    await page.goto(`${collector.origin}/sources/okta`);
    await page.getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Forget the checkpoint').check();
    await dialog.getByRole('button', { name: 'Delete source' }).click();
    await page.waitForURL(`${collector.origin}/sources`);
    await page.getByText('No sources yet').waitFor();
    const config = await readFile(file, 'utf8');
    expect(config).not.toMatch(/^ {2}okta:/m);
    expect(config).toContain('inputs: []');
    const state = JSON.parse(await readFile(join(org.dir, 'data', 'state.json'), 'utf8')) as {
      sources: Record<string, unknown>;
    };
    expect(state.sources.okta).toBeUndefined();
    await until(
      () => logLines(collector.stderr()).some((l) => l.msg === 'Console: source removed from the config.'),
      'the audit line',
    );
    // Stopped: over one and a half of its 10 s intervals the emulator gets no further request (a source
    // still running would have asked within one interval), and new events in the org go nowhere.
    const requests = org.emulator.stats().requests;
    org.emulator.appendEvents(5, { publishedStart: Date.now() - 1000, stepMs: 1 });
    await sleep(15_000);
    expect(org.emulator.stats().requests).toBe(requests);
    expect(await readLines(out)).toHaveLength(BACKLOG + LATER + WHILE_DISABLED);
  });

  it('no response body the browser received contains the access token or the API token', () => {
    const token = new URL(collector.signIn).searchParams.get('token')!;
    expect(session.bodies.length).toBeGreaterThan(20);
    for (const { url, body } of session.bodies) {
      expect(body.includes(token), url).toBe(false);
      expect(body.includes(org.token), url).toBe(false);
    }
  });
});
