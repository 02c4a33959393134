/**
 * deploy-agent's read-only SFTP view against misbehaving clients: READs pipelined without the
 * answers being read, READs still queued when their handle closes, and blobs no version names.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomArchive, startSshServer, type SshTestServer } from './helpers/ssh.ts';
import { RawSftp } from './helpers/sftp-raw.ts';
import { tempDir } from './helpers/temp-dir.ts';
import { MAX_READS_WAITING } from '../src/ssh/sftp/agent-view.ts';

const STATUS_NO_SUCH_FILE = 2;
const STATUS_FAILURE = 4;

/** Uploads a random archive of `size` bytes as the operator and names it by version `name:v1`. */
async function versionedBlob(front: SshTestServer, root: string, name: string, size: number): Promise<string> {
  const archive = await randomArchive(root, name, size);
  assert.equal((await front.sftp(`put ${archive.file}\n`, { cwd: root })).code, 0);
  assert.equal((await front.ssh([`addver -name ${name} -version v1 -hash ${archive.hash}`])).code, 0);
  return archive.hash;
}

/** The server process's resident memory, in bytes. */
async function residentBytes(front: SshTestServer): Promise<number> {
  const status = await readFile(`/proc/${front.server.process.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) * 1024;
}

/** How many fds the server process has open. */
async function openFds(front: SshTestServer): Promise<number> {
  return (await readdir(`/proc/${front.server.process.pid}/fd`)).length;
}

describe("deploy-tools SSH front: deploy-agent's view under load", () => {
  it('answers pipelined READs only as the client reads them, refusing those past the cap', async (t) => {
    const root = await tempDir(t);
    const front = await startSshServer(root);
    t.after(() => front.server.stop());
    const hash = await versionedBlob(front, root, 'big', 1024 * 1024);
    const agent = await RawSftp.connect(front.port, 'deploy-agent', front.agent.file);
    t.after(() => agent.end());
    const handle = await agent.openHandle(`/files/${hash}`);

    // The client stops reading: once its buffer is full it opens no more window, and every
    // READ asks for 256 KiB again, which the server used to buffer without end.
    const rssBefore = await residentBytes(front);
    agent.pause();
    const count = MAX_READS_WAITING + 200;
    const ids = Array.from({ length: count }, () => agent.read(handle, 0, 256 * 1024));
    await sleep(1500);
    const grown = (await residentBytes(front)) - rssBefore;
    agent.resume();
    assert.ok(grown < 24 * 1024 * 1024, `the server buffers a few answers, not ${count} × 256 KiB (grew ${grown} bytes)`);
    await agent.until(() => ids.every((id) => agent.replies.some((r) => r.id === id)));

    const answers = ids.map((id) => agent.replies.find((r) => r.id === id)!);
    const refused = answers.filter((r) => r.type === 'status' && r.code === STATUS_FAILURE && /reads waiting/.test(r.message));
    const data = answers.filter((r) => r.type === 'data');
    assert.ok(refused.length >= 150, `READs past the cap are refused (${refused.length} of ${count})`);
    assert.equal(data.length + refused.length, count, 'every other READ is answered with data once the client reads');
    assert.ok(data.every((r) => r.type === 'data' && r.length === 256 * 1024));
  });

  it('opens no blob stream for READs still queued when their handle closes', async (t) => {
    const root = await tempDir(t);
    const front = await startSshServer(root);
    t.after(() => front.server.stop());
    const hash = await versionedBlob(front, root, 'blob', 1024 * 1024);
    const agent = await RawSftp.connect(front.port, 'deploy-agent', front.agent.file);
    t.after(() => agent.end());

    const loop = async (): Promise<void> => {
      const handle = await agent.openHandle(`/files/${hash}`);
      const reads = [0, 1, 2].map((i) => agent.read(handle, i * 32 * 1024, 32 * 1024));
      const closed = await agent.reply(agent.close(handle));
      assert.deepEqual(closed.type === 'status' && closed.code, 0);
      for (const id of reads) await agent.reply(id);
    };
    for (let i = 0; i < 5; i++) await loop();
    await sleep(200);
    const before = await openFds(front);
    for (let i = 0; i < 40; i++) await loop();
    await sleep(200);
    const after = await openFds(front);
    // A leaked stream either keeps its fd or, if the server collects garbage meanwhile, has it
    // closed by Node with a warning on stderr: neither may happen.
    assert.ok(after - before < 10, `open fds stay put across 40 open/read/close loops (${before} → ${after})`);
    assert.doesNotMatch(front.server.logs(), /on garbage collection/);
  });

  it('serves only blobs a version names: a fresh upload is no such file until addver names it', async (t) => {
    const root = await tempDir(t);
    const front = await startSshServer(root);
    t.after(() => front.server.stop());
    const archive = await randomArchive(root, 'fresh', 10_000);
    assert.equal((await front.sftp(`put ${archive.file}\n`, { cwd: root })).code, 0);
    const agent = await RawSftp.connect(front.port, 'deploy-agent', front.agent.file);
    t.after(() => agent.end());

    const unnamed = await agent.reply(agent.open(`/files/${archive.hash}`));
    assert.equal(unnamed.type === 'status' && unnamed.code, STATUS_NO_SUCH_FILE);
    const fetched = path.join(root, 'fetched.tar.gz');
    assert.notEqual((await front.fetch(`files/${archive.hash}`, fetched)).code, 0, 'OpenSSH sftp cannot fetch it either');

    assert.equal((await front.ssh([`addver -name fresh -version v1 -hash ${archive.hash}`])).code, 0);
    const named = await agent.reply(agent.open(`/files/${archive.hash}`));
    assert.equal(named.type, 'handle', 'the same session reads it once a version names it');
    assert.equal((await front.fetch(`files/${archive.hash}`, fetched)).code, 0);
  });
});
