import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { builtinScriptSource, checkCollectionScript } from './collection-script.js';

async function scriptFile(source: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'oktail-check-'));
  const path = join(dir, 'check.lua');
  await writeFile(path, source);
  return path;
}

const HOOKS = `function initial_state(ctx) return { since = ctx.now } end
function cycle_request(state) return "/api/v1/logs" end
function after_page(state, page) return state, nil end
`;

describe('checkCollectionScript', () => {
  it('finds nothing wrong with the built-in script', async () => {
    expect(await checkCollectionScript(await scriptFile(await builtinScriptSource()))).toEqual([]);
  });

  it('reports a syntax error with its line', async () => {
    const path = await scriptFile(`${HOOKS}\n\nfunction broken(\n  return 1\nend\n`);
    expect(await checkCollectionScript(path)).toEqual([
      { line: 7, message: "syntax error: <name> or '...' expected near 'return'" },
    ]);
  });

  it('reports every missing required hook', async () => {
    const path = await scriptFile(`function cycle_request(state) return "/" end\n`);
    expect(await checkCollectionScript(path)).toEqual([
      { line: null, message: 'missing required function initial_state' },
      { line: null, message: 'missing required function after_page' },
    ]);
  });

  it('points at a likely misspelling of a hook', async () => {
    const path = await scriptFile(
      `function initial_state(ctx) return {} end\nfunction cycle_request(s) return "/" end\n\nfunction afterPage(s, p)\n  return s\nend\n`,
    );
    expect(await checkCollectionScript(path)).toEqual([
      { line: 4, message: 'missing required function after_page (is afterPage a misspelling?)' },
    ]);
  });

  it('reports a hook that is not a function, and a bad transform or tags', async () => {
    const path = await scriptFile(
      `function initial_state(ctx) return {} end\ncycle_request = "/api/v1/logs"\nfunction after_page(s, p) return s end\ntransform = {}\ntags = "systemLog"\n`,
    );
    expect(await checkCollectionScript(path)).toEqual([
      { line: null, message: 'cycle_request must be a function (it is a string)' },
      { line: null, message: 'transform must be a function (it is a table)' },
      { line: null, message: 'tags must be a table of field = value (got string "systemLog")' },
    ]);
  });

  it('reports a failing top-level chunk with its line', async () => {
    const path = await scriptFile(`${HOOKS}local x = nil\nlocal y = x.field\n`);
    expect(await checkCollectionScript(path)).toEqual([
      { line: 5, message: "top-level code failed: attempt to index a nil value (local 'x')" },
    ]);
  });

  it('reports a top-level infinite loop under the same limits as a run', async () => {
    const path = await scriptFile(`${HOOKS}while true do end\n`);
    expect(await checkCollectionScript(path, { limits: { instructionBudget: 100_000 } })).toEqual([
      { line: 4, message: 'top-level code exceeded its instruction budget (100000)' },
    ]);
  });

  it('dry-runs initial_state and cycle_request', async () => {
    const failing = await scriptFile(
      `function initial_state(ctx)\n  return { since = ctx.start_from .. "" }\nend\nfunction cycle_request(s) return "/" end\nfunction after_page(s, p) return s end\n`,
    );
    expect(await checkCollectionScript(failing)).toEqual([
      { line: 2, message: "initial_state failed: attempt to concatenate a nil value (field 'start_from')" },
    ]);
    const noUrl = await scriptFile(
      `function initial_state(ctx) return {} end\nfunction cycle_request(s) end\nfunction after_page(s, p) return s end\n`,
    );
    expect(await checkCollectionScript(noUrl)).toEqual([
      { line: null, message: 'cycle_request must return a URL string (got nil)' },
    ]);
  });

  it('reports a file that cannot be read', async () => {
    const issues = await checkCollectionScript('/nonexistent/check.lua');
    expect(issues).toHaveLength(1);
    expect(issues[0]!.line).toBeNull();
    expect(issues[0]!.message).toMatch(/^\/nonexistent\/check\.lua: cannot read the script: ENOENT/);
  });

  it('rejects a binary chunk as a syntax error', async () => {
    const path = await scriptFile('\x1bLuaT\x00\x19\x93\r\n\x1a\n');
    const issues = await checkCollectionScript(path);
    expect(issues).toEqual([
      { line: null, message: expect.stringContaining("attempt to load a binary chunk (mode is 't')") },
    ]);
  });
});
