import { appendFile } from 'node:fs/promises';
import { writeConfig, type ConfigOptions, type TestOrg } from './harness.js';

/**
 * A config for one source reading `org` with the harness's file sink plus the sink given as YAML lines
 * (indented under `sinks:`); `sinks:` is the config's last section, so the lines are appended.
 */
export async function writeConfigWithSink(
  org: TestOrg,
  sinkLines: string[],
  options: ConfigOptions = {},
): Promise<{ file: string; out: string }> {
  const written = await writeConfig(org, options);
  await appendFile(written.file, sinkLines.map((l) => `  ${l}`).join('\n') + '\n');
  return written;
}

/** Polls `condition` every 20 ms until it holds or `timeoutMs` passed; returns whether it held. */
export async function waitUntil(
  condition: () => Promise<boolean> | boolean,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
