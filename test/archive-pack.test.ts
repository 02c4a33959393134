/**
 * Deterministic packing: same tree → same bytes, sorted entries with fixed metadata, symlinks
 * kept as symlinks, special files refused, and the result accepted by upload-time inspection.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { startArchiveInspection } from '../src/core/archive/inspect.ts';
import { packDirectory, treeSize } from '../src/core/archive/pack.ts';
import { isStrataError } from '../src/core/errors.ts';

/** Collects a stream into one buffer. */
async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The entries of a tar.gz, in order, with the header fields packing fixes. */
function list(archive: Buffer): Array<{ path: string; type: string; mode: number | undefined; uid: number | undefined; gid: number | undefined; uname: string | undefined; mtime: number | undefined; linkpath: string | undefined; size: number }> {
  const entries: ReturnType<typeof list> = [];
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      entries.push({ path: entry.path, type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid, uname: entry.uname, mtime: entry.mtime?.getTime(), linkpath: entry.linkpath, size: entry.size });
      entry.resume();
    },
  });
  parser.end(gunzipSync(archive));
  return entries;
}

describe('packDirectory', () => {
  let root = '';
  let tree = '';

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'strata-pack-'));
    tree = join(root, 'tree');
    await mkdir(join(tree, 'bin'), { recursive: true });
    await mkdir(join(tree, 'lib', 'deep'), { recursive: true });
    await writeFile(join(tree, 'bin', 'run'), '#!/bin/sh\necho run\n');
    await chmod(join(tree, 'bin', 'run'), 0o4755);
    await writeFile(join(tree, 'lib', 'deep', 'data.bin'), Buffer.alloc(70_000, 7));
    await writeFile(join(tree, 'lib-a.txt'), 'a\n');
    await writeFile(join(tree, 'README'), 'hello\n');
    await chmod(join(tree, 'README'), 0o600);
    await writeFile(join(tree, 'empty'), '');
    await symlink('bin/run', join(tree, 'current'));
    await writeFile(join(tree, `${'n'.repeat(150)}.txt`), 'long name\n');
  });

  after(() => rm(root, { recursive: true, force: true }));

  it('gives identical bytes for the same tree, even after mtimes change', async () => {
    const first = await collect(packDirectory(tree));
    const second = await collect(packDirectory(tree));
    assert.ok(first.equals(second));
    await utimes(join(tree, 'README'), new Date('2020-05-05'), new Date('2020-05-05'));
    await utimes(join(tree, 'lib'), new Date('2021-01-01'), new Date('2021-01-01'));
    assert.ok((await collect(packDirectory(tree))).equals(first));
    assert.equal(first.readUInt32LE(4), 0, 'gzip header mtime is 0');
  });

  it('lists entries in byte order of their path, directories with a trailing slash, fixed metadata', async () => {
    const entries = list(await collect(packDirectory(tree)));
    assert.deepEqual(
      entries.map((entry) => entry.path),
      ['README', 'bin/', 'bin/run', 'current', 'empty', 'lib/', 'lib/deep/', 'lib/deep/data.bin', 'lib-a.txt', `${'n'.repeat(150)}.txt`].sort((a, b) =>
        Buffer.compare(Buffer.from(a.replace(/\/$/, '')), Buffer.from(b.replace(/\/$/, ''))),
      ),
    );
    assert.equal(entries[0]?.path, 'README');
    for (const entry of entries) {
      assert.equal(entry.uid, 0);
      assert.equal(entry.gid, 0);
      assert.equal(entry.uname ?? '', '');
      assert.equal(entry.mtime, Date.parse('2000-01-01T00:00:00Z'));
    }
  });

  it('keeps permission bits (setuid included) and sizes', async () => {
    const entries = new Map(list(await collect(packDirectory(tree))).map((entry) => [entry.path, entry]));
    assert.equal(entries.get('bin/run')?.mode, 0o4755);
    assert.equal(entries.get('README')?.mode, 0o600);
    assert.equal(entries.get('lib/deep/data.bin')?.size, 70_000);
    assert.equal(entries.get('empty')?.size, 0);
    assert.equal(entries.get('bin/')?.type, 'Directory');
  });

  it('stores symlinks as symlinks', async () => {
    const entry = list(await collect(packDirectory(tree))).find((candidate) => candidate.path === 'current');
    assert.equal(entry?.type, 'SymbolicLink');
    assert.equal(entry?.linkpath, 'bin/run');
  });

  it('honours mtime, keepMtimes and keepOwners', async () => {
    const fixed = list(await collect(packDirectory(tree, { mtime: new Date('2010-01-01T00:00:00Z') })));
    assert.ok(fixed.every((entry) => entry.mtime === Date.parse('2010-01-01T00:00:00Z')));
    const kept = list(await collect(packDirectory(tree, { keepMtimes: true, keepOwners: true })));
    assert.equal(kept.find((entry) => entry.path === 'README')?.mtime, Date.parse('2020-05-05'));
    assert.equal(kept.find((entry) => entry.path === 'README')?.uid, process.getuid?.() ?? 0);
  });

  it('is accepted by upload-time inspection', async () => {
    const { sink, verdict } = startArchiveInspection({ maxEntries: 100, maxUnpackedBytes: 1 << 20 });
    packDirectory(tree).pipe(sink);
    assert.deepEqual(await verdict, { format: 'tar.gz', entries: 10, unpackedBytes: await treeSize(tree) });
  });

  it('packs an empty directory into an empty archive that inspection accepts', async () => {
    const empty = join(root, 'empty-tree');
    await mkdir(empty);
    const { sink, verdict } = startArchiveInspection({ maxEntries: 100, maxUnpackedBytes: 100 });
    packDirectory(empty).pipe(sink);
    assert.deepEqual(await verdict, { format: 'tar.gz', entries: 0, unpackedBytes: 0 });
  });

  it('refuses a fifo, naming its path', async () => {
    const withFifo = join(root, 'with-fifo');
    await mkdir(join(withFifo, 'run'), { recursive: true });
    await writeFile(join(withFifo, 'ok.txt'), 'ok');
    await promisify(execFile)('mkfifo', [join(withFifo, 'run', 'control')]);
    await assert.rejects(collect(packDirectory(withFifo)), (error: unknown) => {
      assert.ok(isStrataError(error, 'UNSAFE_ARCHIVE_ENTRY'));
      assert.match(error.message, /cannot pack "run\/control": it is a fifo/);
      return true;
    });
  });
});
