/**
 * `strata quickstart` (what `npm start` runs) as a process: a server and an agent in one, the
 * sample configuration deployed, the next steps it prints working, and SIGTERM a clean exit.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cp, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { CLI, ROOT, runStrata } from './helpers/strata-server.ts';
import { waitFor } from './helpers/strata-agent.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** Resolves with how `child` exited, or rejects once `timeoutMs` has passed without it exiting. */
async function exited(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`the process did not exit within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const [code, signal] = (await Promise.race([once(child, 'exit'), late])) as [number | null, NodeJS.Signals | null];
    return { code, signal };
  } finally {
    clearTimeout(timer);
  }
}

/** Whether something accepts TCP connections on `port` of loopback. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('strata quickstart', () => {
  it('deploys the sample configuration, takes the change its next steps describe, and exits 0 on SIGTERM', async (t) => {
    const { scripts } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.equal(scripts['start'], 'node bin/strata.js quickstart', 'npm start runs what this test runs (with its defaults)');
    const root = await tempDir(t, 'strata-quickstart-');
    const data = path.join(root, 'demo');
    const child = spawn(process.execPath, [CLI, 'quickstart', '--data', data, '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' },
    });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));

    const current = await waitFor('the line saying the sample configuration deployed', async () => {
      if (child.exitCode !== null) throw new Error(`quickstart exited with ${child.exitCode}: ${stderr}`);
      return /^Agent demo-agent deployed configuration "hello" revision 1 into (\S+)$/m.exec(stdout)?.[1];
    }, 30_000, 50);
    assert.equal(current, path.join(data, 'agent', 'hello', 'current'));
    const sample = path.join(ROOT, 'examples', 'hello', 'index.html');
    assert.equal(await readFile(path.join(current, 'index.html'), 'utf8'), await readFile(sample, 'utf8'));
    const url = /^Strata server on (https:\/\/127\.0\.0\.1:(\d+)) \(data in /m.exec(stdout);
    assert.ok(url, stdout);
    assert.match(stdout, /^Stop with Ctrl-C\.$/m);

    // The next steps it prints: the admin.env it names, a new version pushed, bumpconf. The agent
    // inside polls every 30 s, so the change arriving within 5 s came by push.
    const adminEnv = path.join(data, 'data', 'admin.env');
    assert.match(stdout, new RegExp(`^  source ${adminEnv.replaceAll('.', '\\.')}$`, 'm'));
    const env = Object.fromEntries([...(await readFile(adminEnv, 'utf8')).matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    assert.equal(env['STRATA_SERVER'], url[1]);
    const v2 = path.join(root, 'hello');
    await cp(path.dirname(sample), v2, { recursive: true });
    await writeFile(path.join(v2, 'index.html'), '<h1>v2</h1>\n');
    for (const args of [['push', v2, '--name', 'hello', '--version', 'v2'], ['bumpconf', '--name', 'hello', '--component', 'hello']]) {
      const result = await runStrata(args, env);
      assert.equal(result.code, 0, `strata ${args.join(' ')}: ${result.stderr}`);
    }
    await waitFor('v2 deployed', async () => (await readFile(path.join(current, 'index.html'), 'utf8')) === '<h1>v2</h1>\n', 5_000, 20);

    child.kill('SIGTERM');
    const exit = await exited(child, 15_000);
    assert.deepEqual(exit, { code: 0, signal: null }, stderr);
    assert.equal(await listening(Number(url[2])), false, 'the server stopped listening');
    // It logs at warn: a clean run and shutdown leave no error behind.
    assert.doesNotMatch(stderr, /"level":(50|60)/, stderr);
  });
});
