import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const entry = fileURLToPath(new URL('./main.ts', import.meta.url));

describe('emulator process', () => {
  it('prints how to reach it, serves its events over HTTPS and stops cleanly on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', entry, '--events', '30', '--rate-limit', '50'],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', () => reject(new Error(`emulator exited early: ${stderr}`)));
      });
      const info = JSON.parse(line) as {
        origin: string;
        domain: string;
        caFile: string;
        token: string;
        events: number;
      };
      expect(info).toMatchObject({
        origin: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+$/),
        events: 30,
      });
      expect(info.domain).toBe(info.origin.replace('https://', ''));
      expect(info.token.length).toBeGreaterThanOrEqual(24);

      const agent = new Agent({ connect: { ca: readFileSync(info.caFile, 'utf8') } });
      const res = await request(`${info.origin}/api/v1/logs?limit=1000`, {
        dispatcher: agent,
        headers: { authorization: `SSWS ${info.token}` },
      });
      const events = (await res.body.json()) as unknown[];
      await agent.close();
      expect(res.statusCode).toBe(200);
      expect(events).toHaveLength(30);
      expect(res.headers['x-rate-limit-limit']).toBe('50');

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(existsSync(dirname(info.caFile))).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('refuses bad arguments with a usage message', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, '--events', 'many'], { cwd: root });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/--events must be an integer/);
    expect(stderr).toMatch(/Usage:/);
  });
});
