/**
 * One agent per directory (src/agent/lock.ts), with real processes: the lock is a flock the kernel
 * drops when its holder dies, so racing starters get exactly one winner, a holder killed with
 * SIGKILL frees the directory at once, and nothing a holder started keeps it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { lockDirectory } from '../src/agent/lock.ts';
import { ROOT } from './helpers/strata-server.ts';
import { tempDir } from './helpers/temp-dir.ts';

const LOCK = JSON.stringify(pathToFileURL(path.join(ROOT, 'src/agent/lock.ts')).href);

/**
 * A node process that tries to lock `dir`, prints `locked <pid>` or `refused`, then holds on (when
 * `holdMs` > 0) after starting a detached `sleep` that would outlive it.
 */
function holder(dir: string, holdMs: number): ChildProcess {
  const code = `
import { spawn } from 'node:child_process';
const { lockDirectory } = await import(${LOCK});
try {
  await lockDirectory(process.argv[1]);
  const sleeper = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
  sleeper.unref();
  process.stdout.write('locked ' + process.pid + ' ' + sleeper.pid + '\\n');
  setTimeout(() => {}, Number(process.argv[2]));
} catch (error) {
  process.stdout.write('refused ' + error.message + '\\n');
}`;
  return spawn(process.execPath, ['--input-type=module', '-e', code, dir, String(holdMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
}

/** The first line a holder prints. */
async function firstLine(child: ChildProcess): Promise<string> {
  let text = '';
  child.stdout!.setEncoding('utf8');
  for await (const chunk of child.stdout! as AsyncIterable<string>) {
    text += chunk;
    if (text.includes('\n')) break;
  }
  return text.split('\n')[0]!;
}

describe('agent directory lock', () => {
  it('refuses a second holder, naming the first, and lets the directory go when released', async (t) => {
    const dir = await tempDir(t, 'strata-lock-');
    const release = await lockDirectory(dir);
    assert.equal((await readFile(path.join(dir, 'agent.lock'), 'utf8')).trim(), String(process.pid));
    assert.equal((await stat(path.join(dir, 'agent.lock'))).mode & 0o777, 0o600);
    await assert.rejects(lockDirectory(dir), new RegExp(`another agent \\(pid ${process.pid}\\) is running on .*; one agent per directory`));
    await release();
    await release(); // idempotent
    const again = await lockDirectory(dir);
    await again();
  });

  it('takes a directory whose lock file a dead agent left behind, whatever the file says', async (t) => {
    const dir = await tempDir(t, 'strata-lock-');
    for (const content of ['', '1\n', 'garbage']) {
      await writeFile(path.join(dir, 'agent.lock'), content);
      const release = await lockDirectory(dir);
      await release();
    }
  });

  it('frees the directory at once when its holder is killed with SIGKILL, though its detached child lives on', async (t) => {
    const dir = await tempDir(t, 'strata-lock-');
    const first = holder(dir, 60_000);
    t.after(() => first.kill('SIGKILL'));
    const line = await firstLine(first);
    const [, pid, sleeper] = line.split(' ');
    assert.match(line, /^locked \d+ \d+$/);
    t.after(() => {
      try {
        process.kill(Number(sleeper), 'SIGKILL');
      } catch {
        // already gone
      }
    });
    await assert.rejects(lockDirectory(dir), new RegExp(`another agent \\(pid ${pid}\\) is running`));
    first.kill('SIGKILL');
    await once(first, 'exit');
    process.kill(Number(sleeper), 0); // the holder's detached child is still running …
    const release = await lockDirectory(dir); // … and does not hold the lock
    await release();
  });

  it('gives exactly one of several agents starting at once the directory', async (t) => {
    const dir = await tempDir(t, 'strata-lock-');
    for (let round = 0; round < 3; round++) {
      // Each holds on far longer than the others can take to start, even on a loaded machine; all are killed after.
      const children = Array.from({ length: 6 }, () => holder(dir, 60_000));
      t.after(() => children.forEach((child) => child.kill('SIGKILL')));
      const lines = await Promise.all(children.map(firstLine));
      const winners = lines.filter((line) => line.startsWith('locked '));
      assert.equal(winners.length, 1, `round ${round}: ${lines.join(' | ')}`);
      // The pid is named once the winner has written it; a loser may look a moment before that.
      for (const line of lines.filter((l) => !l.startsWith('locked '))) assert.match(line, /^refused another agent( \(pid \d+\))? is running/);
      for (const child of children) child.kill('SIGKILL');
      await Promise.all(children.map((child) => (child.exitCode === null && child.signalCode === null ? once(child, 'exit') : undefined)));
      for (const line of winners) {
        try {
          process.kill(Number(line.split(' ')[2]), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
});
