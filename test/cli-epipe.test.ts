/**
 * A reader that stops early (`strata --help | head -1`): the real CLI, its stdout a pipe whose
 * read end is closed before it writes, exits quietly instead of crashing on EPIPE.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { CLI, ROOT } from './helpers/strata-server.ts';

/** Runs the CLI with `args`; with `closeStdout`, the read end of its stdout is closed at once. */
async function run(args: string[], closeStdout: boolean): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' },
  });
  let stdout = '';
  let stderr = '';
  // Closed synchronously, long before the child has loaded anything: its first write finds no reader.
  if (closeStdout) child.stdout.destroy();
  else child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr };
}

describe('strata with a reader that stops early', () => {
  for (const args of [['--help'], ['agent', '--help']]) {
    it(`strata ${args.join(' ')} prints its help to a reader that reads it all`, async () => {
      const result = await run(args, false);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^Usage: strata/);
      assert.equal(result.stderr, '');
    });

    it(`strata ${args.join(' ')} exits 0 quietly when its stdout is closed early`, async () => {
      const result = await run(args, true);
      assert.equal(result.stderr, '', 'no EPIPE crash on stderr');
      assert.equal(result.signal, null);
      assert.equal(result.code, 0);
    });
  }
});
