/**
 * The server as a process: restarts keep data and identity, bad flags are one line and exit 2,
 * a full disk during an upload leaves nothing behind, a signal shuts it down cleanly.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { once } from 'node:events';
import net from 'node:net';
import { runStrata, startServer } from './helpers/strata-server.ts';
import { makeKey } from './helpers/ssh.ts';
import { tempDir } from './helpers/temp-dir.ts';

const exec = promisify(execFile);

describe('strata server process', () => {
  it('keeps its data, CA and admin token across a restart, and stops cleanly on SIGTERM', async (t) => {
    const root = await tempDir(t);
    const data = path.join(root, 'data');
    const first = await startServer(data);
    const site = path.join(root, 'site');
    await mkdir(site);
    await writeFile(path.join(site, 'index.html'), 'hello');
    assert.equal((await runStrata(['push', site, '--name', 'web', '--version', 'v1'], first.env)).code, 0);
    assert.equal(await first.stop('SIGTERM'), 0, 'clean exit on SIGTERM');
    assert.match(first.logs(), /"reqId":"[0-9a-f-]{36}"/, 'requests are logged with an id');
    assert.ok(!first.logs().includes(first.token.slice(20)), 'the token secret never reaches the log');

    const second = await startServer(data);
    t.after(() => second.stop());
    assert.equal(second.fingerprint, first.fingerprint, 'the CA survives restarts');
    assert.equal(second.token, first.token, 'admin.env keeps the admin token');
    const shown = await runStrata(['showcomp', '--name', 'web'], second.env);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /v1/);
  });

  it('refuses bad flags with one line and exit status 2', async (t) => {
    const root = await tempDir(t);
    const cases: [string[], RegExp][] = [
      [['server', '--data', root, '--listen', 'nonsense'], /--listen: invalid listen address "nonsense"/],
      [['server', '--data', root, '--max-upload', 'lots'], /--max-upload: invalid size "lots"/],
      [['server', '--data', root, '--retention-interval', '5 minutes'], /--retention-interval: invalid duration/],
      [['server', '--data', root, '--log-level', 'loud'], /--log-level/],
      [['server', '--bogus'], /unknown option '--bogus'/],
    ];
    for (const [args, pattern] of cases) {
      const result = await runStrata(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, pattern);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    }
  });

  it('exits when a later start-up step fails, instead of listening half-started', async (t) => {
    const root = await tempDir(t);
    const keys = path.join(root, 'keys');
    await mkdir(keys);
    const operator = await makeKey(keys, 'operator');
    const agent = await makeKey(keys, 'agent');
    await writeFile(path.join(root, 'operator.keys'), `${operator.publicLine}\n`);
    await writeFile(path.join(root, 'agent.keys'), `${agent.publicLine}\n`);
    // The SSH port is taken: the HTTP API already listens when the SSH front fails to bind.
    const taken = net.createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    t.after(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const sshPort = (taken.address() as net.AddressInfo).port;
    const started = Date.now();
    const result = await runStrata(['server', '--data', path.join(root, 'data'), '--listen', '127.0.0.1:0',
      '--ssh-listen', `127.0.0.1:${sshPort}`, '--ssh-operator-keys', path.join(root, 'operator.keys'), '--ssh-agent-keys', path.join(root, 'agent.keys')]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /EADDRINUSE|in use/);
    assert.ok(Date.now() - started < 20_000, 'it exited promptly');
  });

  it('answers INSUFFICIENT_STORAGE when the disk fills during an upload, and leaves no partial file', async (t) => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'strata-full-'));
    const data = path.join(root, 'data');
    await mkdir(data);
    try {
      await exec('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', data]);
    } catch (error) {
      await rm(root, { recursive: true, force: true });
      t.skip(`needs a small tmpfs to fill, and mount is not permitted here: ${(error as Error).message.split('\n')[0]}`);
      return;
    }
    let server: Awaited<ReturnType<typeof startServer>> | undefined;
    // One hook, in order: the server lets go of the mount before it is unmounted and removed.
    t.after(async () => {
      await server?.stop();
      await exec('umount', [data]);
      await rm(root, { recursive: true, force: true });
    });
    server = await startServer(data);
    // 12 MB of incompressible bytes cannot fit in what is left of 8 MB.
    const big = path.join(root, 'big');
    await mkdir(big);
    await writeFile(path.join(big, 'random.bin'), randomBytes(12 * 1024 * 1024));
    const result = await runStrata(['push', big, '--name', 'big', '--version', 'v1'], server.env);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /ran out of disk space/);
    const uploads = await readdir(path.join(data, 'store', 'uploads'));
    assert.deepEqual(uploads, [], 'the temp file is removed');
    const small = path.join(root, 'small');
    await mkdir(small);
    await writeFile(path.join(small, 'a.txt'), 'still works');
    const after = await runStrata(['push', small, '--name', 'small', '--version', 'v1'], server.env);
    assert.equal(after.code, 0, after.stderr);
    assert.ok((await readFile(path.join(data, 'admin.env'), 'utf8')).includes('STRATA_TOKEN='));
  });
});
