/**
 * Agent-side layer extraction on real files: layering, whiteouts, modes, zip layers, each
 * refusal rule, and a full disk (its errors injected into the writes), checking after every
 * refusal that the half-built tree is gone.
 */
import assert from 'node:assert/strict';
import fs, { existsSync, readlinkSync } from 'node:fs';
import { lstat, readFile, readlink, readdir, stat, symlink, mkdir, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { describe, it, mock } from 'node:test';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { unpackLayers, type UnpackLimits } from '../src/agent/unpack/unpack-layers.ts';
import { StrataError } from '../src/core/errors.ts';
import type { ErrorCode } from '../src/protocol/error-codes.ts';
import { tarBytes, type TarInput } from './helpers/tar-bytes.ts';
import { tempDir } from './helpers/temp-dir.ts';
import { writeZip, type ZipEntryInput } from './helpers/zip-writer.ts';

const LIMITS: UnpackLimits = { maxFiles: 1000, maxBytes: 10 * 1024 * 1024 };

/** Writes layer files into `dir` and returns them as unpack input. */
async function layers(dir: string, archives: Record<string, Buffer>): Promise<{ name: string; path: string }[]> {
  const result = [];
  for (const [name, bytes] of Object.entries(archives)) {
    const file = path.join(dir, `${name}.layer`);
    await writeFile(file, bytes);
    result.push({ name, path: file });
  }
  return result;
}

/** Asserts a refusal with `code` whose message matches, and that the target was removed. */
async function refused(promise: Promise<unknown>, target: string, code: ErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StrataError, `not a StrataError: ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
  assert.equal(existsSync(target), false, 'target must be removed after a failure');
}

describe('unpackLayers', () => {
  it('unpacks layers in order, later files overwriting earlier ones, file and dir swaps included', async (t) => {
    const dir = await tempDir(t);
    const target = path.join(dir, 'out');
    const input = await layers(dir, {
      base: gzipSync(tarBytes([
        { path: 'app/' },
        { path: 'app/a.txt', body: 'one' },
        { path: 'app/keep.txt', body: 'keep' },
        { path: 'was-file', body: 'file' },
        { path: 'was-dir/' },
        { path: 'was-dir/inner', body: 'x' },
        { path: 'link', type: 'SymbolicLink', linkpath: 'app/a.txt' },
      ])),
      top: tarBytes([
        { path: 'app/a.txt', body: 'two' },
        { path: 'was-file/' },
        { path: 'was-file/now-inside', body: 'y' },
        { path: 'was-dir', body: 'now a file' },
        { path: 'link', body: 'no longer a link' },
        { path: 'hard', type: 'Link', linkpath: 'app/keep.txt' },
      ]),
    });
    const result = await unpackLayers({ layers: input, target, limits: LIMITS });
    assert.deepEqual(result, { files: 13, bytes: 3 + 4 + 4 + 1 + 3 + 1 + 10 + 16 });
    assert.equal(await readFile(path.join(target, 'app/a.txt'), 'utf8'), 'two');
    assert.equal(await readFile(path.join(target, 'app/keep.txt'), 'utf8'), 'keep');
    assert.equal(await readFile(path.join(target, 'was-file/now-inside'), 'utf8'), 'y');
    assert.equal(await readFile(path.join(target, 'was-dir'), 'utf8'), 'now a file');
    assert.equal((await lstat(path.join(target, 'link'))).isFile(), true);
    assert.equal((await stat(path.join(target, 'hard'))).ino, (await stat(path.join(target, 'app/keep.txt'))).ino);
  });

  it('applies whiteouts and opaque directories to lower layers only', async (t) => {
    const dir = await tempDir(t);
    const target = path.join(dir, 'out');
    const input = await layers(dir, {
      base: tarBytes([
        { path: 'etc/' },
        { path: 'etc/gone', body: 'x' },
        { path: 'etc/stays', body: 'x' },
        { path: 'var/' },
        { path: 'var/old/' },
        { path: 'var/old/deep', body: 'x' },
        { path: 'var/sub/' },
        { path: 'var/sub/lower', body: 'x' },
      ]),
      top: tarBytes([
        { path: 'etc/.wh.gone' },
        { path: 'etc/.wh.never-existed' },
        { path: 'var/sub/mine-before', body: 'kept: same layer, before the marker' },
        { path: 'var/.wh..wh..opq' },
        { path: 'var/mine-after', body: 'kept' },
      ]),
    });
    await unpackLayers({ layers: input, target, limits: LIMITS });
    assert.deepEqual((await readdir(path.join(target, 'etc'))).sort(), ['stays']);
    assert.deepEqual((await readdir(path.join(target, 'var'))).sort(), ['mine-after', 'sub']);
    assert.deepEqual(await readdir(path.join(target, 'var/sub')), ['mine-before']);
  });

  it('gives a whiteout the same result wherever it sits in its layer', async (t) => {
    const dir = await tempDir(t);
    const base = tarBytes([{ path: 'a/' }, { path: 'a/lower', body: 'x' }, { path: 'f', body: 'lower' }]);
    const orders: Record<string, TarInput[]> = {
      before: [{ path: '.wh.a' }, { path: 'a/mine', body: 'y' }, { path: '.wh.f' }, { path: 'f', body: 'mine' }],
      after: [{ path: 'a/mine', body: 'y' }, { path: '.wh.a' }, { path: 'f', body: 'mine' }, { path: '.wh.f' }],
    };
    for (const [order, entries] of Object.entries(orders)) {
      const target = path.join(dir, `out-${order}`);
      const input = await layers(dir, { [`base-${order}`]: base, [`top-${order}`]: tarBytes(entries) });
      await unpackLayers({ layers: input, target, limits: LIMITS });
      assert.deepEqual((await readdir(path.join(target, 'a'))).sort(), ['mine'], `whiteout ${order} the layer's own entries: lower layers' a/lower goes, this layer's a/mine stays`);
      assert.equal(await readFile(path.join(target, 'f'), 'utf8'), 'mine', `whiteout ${order}: this layer's own f stays`);
    }
  });

  it('keeps permission bits, strips setuid/setgid/sticky from files, applies directory modes at the end', async (t) => {
    const dir = await tempDir(t);
    const target = path.join(dir, 'out');
    const input = await layers(dir, {
      code: tarBytes([
        { path: 'bin/', mode: 0o555 },
        { path: 'bin/tool', mode: 0o4755, body: '#!/bin/sh\n' },
        { path: 'bin/group', mode: 0o2750, body: 'g' },
        { path: 'bin/sticky', mode: 0o1644, body: 's' },
        { path: 'secret', mode: 0o600, body: 's', mtime: new Date(1_500_000_000_000) },
        { path: 'shared/', mode: 0o3777 },
      ]),
    });
    await unpackLayers({ layers: input, target, limits: LIMITS });
    const mode = async (p: string): Promise<number> => (await lstat(path.join(target, p))).mode & 0o7777;
    assert.equal(await mode('bin/tool'), 0o755);
    assert.equal(await mode('bin/group'), 0o750);
    assert.equal(await mode('bin/sticky'), 0o644);
    assert.equal(await mode('secret'), 0o600);
    assert.equal(await mode('bin'), 0o555);
    assert.equal(await mode('shared'), 0o1777);
    assert.equal((await lstat(path.join(target, 'secret'))).mtimeMs, 1_500_000_000_000);
  });

  it('unpacks a tar.gz built by node-tar from real files, streaming a large file', async (t) => {
    const dir = await tempDir(t);
    const src = path.join(dir, 'src');
    await mkdir(path.join(src, 'data'), { recursive: true });
    const big = Buffer.alloc(5 * 1024 * 1024, 'abcdefghij');
    await writeFile(path.join(src, 'data/big.bin'), big);
    await writeFile(path.join(src, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await symlink('data/big.bin', path.join(src, 'alias'));
    const archive = path.join(dir, 'layer.tgz');
    await tar.c({ gzip: true, cwd: src, file: archive, portable: true }, ['data', 'run.sh', 'alias']);
    const target = path.join(dir, 'out');
    const result = await unpackLayers({ layers: [{ name: 'real', path: archive }], target, limits: LIMITS });
    assert.equal(result.bytes, big.length + 10);
    assert.ok((await readFile(path.join(target, 'data/big.bin'))).equals(big));
    assert.equal((await lstat(path.join(target, 'run.sh'))).mode & 0o777, 0o755);
    assert.equal(await readlink(path.join(target, 'alias')), 'data/big.bin');
  });

  it('unpacks a zip layer with modes and a symlink, over a tar layer', async (t) => {
    const dir = await tempDir(t);
    const target = path.join(dir, 'out');
    const zipEntries: ZipEntryInput[] = [
      { name: 'site/' },
      { name: 'site/index.html', data: '<p>zip</p>', method: 'deflate' },
      { name: 'site/run', data: '#!/bin/sh\n', mode: 0o104755 },
      { name: 'site/latest', data: 'index.html', mode: 0o120777 },
      { name: 'site/.wh.old', data: '' },
    ];
    const input = await layers(dir, {
      base: tarBytes([{ path: 'site/' }, { path: 'site/old', body: 'x' }, { path: 'site/index.html', body: 'tar' }]),
      web: writeZip(zipEntries),
    });
    await unpackLayers({ layers: input, target, limits: LIMITS });
    assert.equal(await readFile(path.join(target, 'site/index.html'), 'utf8'), '<p>zip</p>');
    assert.equal((await lstat(path.join(target, 'site/run'))).mode & 0o7777, 0o755);
    assert.equal(await readlink(path.join(target, 'site/latest')), 'index.html');
    assert.equal(existsSync(path.join(target, 'site/old')), false);
  });

  it('refuses a target that already exists, leaving it alone', async (t) => {
    const dir = await tempDir(t);
    const target = path.join(dir, 'out');
    await mkdir(target);
    await writeFile(path.join(target, 'precious'), 'x');
    const input = await layers(dir, { code: tarBytes([{ path: 'a', body: 'x' }]) });
    await assert.rejects(unpackLayers({ layers: input, target, limits: LIMITS }), { code: 'EEXIST' });
    assert.equal(existsSync(path.join(target, 'precious')), true);
  });
});

describe('unpackLayers refusals', () => {
  const cases: { name: string; archives: Record<string, Buffer>; code?: ErrorCode; message: RegExp; limits?: UnpackLimits }[] = [
    {
      name: 'an absolute path',
      archives: { code: tarBytes([{ path: '/etc/passwd', body: 'x' }]) },
      message: /^layer "code": unsafe archive entry "\/etc\/passwd": path is absolute$/,
    },
    {
      name: 'a ".." component',
      archives: { code: tarBytes([{ path: 'ok', body: 'x' }, { path: 'a/../../x', body: 'x' }]) },
      message: /^layer "code": unsafe archive entry "a\/\.\.\/\.\.\/x": path escapes the tree with "\.\."$/,
    },
    {
      name: 'a symlink whose target leaves the tree',
      archives: { code: tarBytes([{ path: 'a/', type: 'Directory' }, { path: 'a/l', type: 'SymbolicLink', linkpath: '../../etc' }]) },
      message: /^layer "code": unsafe archive entry "a\/l": symlink target "\.\.\/\.\.\/etc" leaves the tree$/,
    },
    {
      name: 'an absolute symlink target',
      archives: { code: tarBytes([{ path: 'l', type: 'SymbolicLink', linkpath: '/etc/passwd' }]) },
      message: /symlink target "\/etc\/passwd" is absolute/,
    },
    {
      name: 'a write through a symlink an earlier layer made',
      archives: {
        base: tarBytes([{ path: 'sub/' }, { path: 'lnk', type: 'SymbolicLink', linkpath: 'sub' }]),
        top: tarBytes([{ path: 'lnk/file', body: 'x' }]),
      },
      message: /^layer "top": unsafe archive entry "lnk\/file": path goes through the symlink "lnk" already in the tree/,
    },
    {
      name: 'a symlink chain across layers that leaves the tree',
      archives: {
        base: tarBytes([{ path: 'a/' }, { path: 'a/b', type: 'SymbolicLink', linkpath: '..' }]),
        top: tarBytes([{ path: 'c', type: 'SymbolicLink', linkpath: 'a/b/../x' }]),
      },
      message: /^layer "top": unsafe archive entry "c": symlink target "a\/b\/\.\.\/x" leaves the tree through other symlinks/,
    },
    {
      name: 'a hard link outside the tree',
      archives: { code: tarBytes([{ path: 'h', type: 'Link', linkpath: '../../etc/shadow' }]) },
      message: /^layer "code": unsafe archive entry "h": hard link target "\.\.\/\.\.\/etc\/shadow" escapes the tree with "\.\."$/,
    },
    {
      name: 'a hard link to something not yet extracted',
      archives: { code: tarBytes([{ path: 'h', type: 'Link', linkpath: 'missing' }]) },
      message: /hard link target "missing" is not a regular file already extracted/,
    },
    {
      name: 'a hard link to a directory',
      archives: { code: tarBytes([{ path: 'd/' }, { path: 'h', type: 'Link', linkpath: 'd' }]) },
      message: /hard link target "d" is not a regular file/,
    },
    {
      name: 'a fifo',
      archives: { code: tarBytes([{ path: 'pipe', type: 'FIFO' }]) },
      message: /^layer "code": unsafe archive entry "pipe": fifo entries are not allowed/,
    },
    {
      name: 'a character device',
      archives: { code: tarBytes([{ path: 'null', type: 'CharacterDevice', devmaj: 1, devmin: 3 }]) },
      message: /unsafe archive entry "null": character device entries are not allowed/,
    },
    {
      name: 'a block device',
      archives: { code: tarBytes([{ path: 'sda', type: 'BlockDevice', devmaj: 8, devmin: 0 }]) },
      message: /unsafe archive entry "sda": block device entries are not allowed/,
    },
    {
      name: 'a zip fifo',
      archives: { web: writeZip([{ name: 'ok', data: 'x' }, { name: 'p', mode: 0o010644 }]) },
      message: /^layer "web": unsafe archive entry "p": fifo entries are not allowed/,
    },
    {
      name: 'a zip symlink out of the tree',
      archives: { web: writeZip([{ name: 'l', data: '../x', mode: 0o120777 }]) },
      message: /^layer "web": unsafe archive entry "l": symlink target "\.\.\/x" leaves the tree$/,
    },
    {
      name: 'more entries than maxFiles across layers',
      archives: { a: tarBytes([{ path: 'x', body: '' }, { path: 'y', body: '' }]), b: tarBytes([{ path: 'z', body: '' }]) },
      limits: { maxFiles: 2, maxBytes: 100 },
      message: /^layer "b": unsafe archive entry "z": the layers have more than 2 entries in all$/,
    },
    {
      name: 'more bytes than maxBytes across layers',
      archives: { a: tarBytes([{ path: 'x', body: '12345' }]), b: tarBytes([{ path: 'y', body: '123456' }]) },
      limits: { maxFiles: 100, maxBytes: 10 },
      message: /^layer "b": unsafe archive entry "y": the layers unpack to more than 10 bytes in all$/,
    },
    {
      name: 'a truncated tar',
      archives: { code: tarBytes([{ path: 'a', body: 'x'.repeat(2000) }]).subarray(0, 1200) },
      code: 'INVALID_ARCHIVE',
      message: /^layer "code": archive is truncated/,
    },
    {
      name: 'a tar without its end marker',
      archives: { code: tarBytes([{ path: 'a', body: 'x' }], { endMarker: false }) },
      code: 'INVALID_ARCHIVE',
      message: /truncated/,
    },
    {
      name: 'a truncated tar.gz',
      archives: { code: gzipSync(tarBytes([{ path: 'a', body: 'x'.repeat(5000) }])).subarray(0, 40) },
      code: 'INVALID_ARCHIVE',
      message: /^layer "code": archive is truncated/,
    },
    {
      name: 'a truncated zip',
      archives: { web: writeZip([{ name: 'a', data: 'x'.repeat(100) }]).subarray(0, 60) },
      code: 'INVALID_ARCHIVE',
      message: /^layer "web": zip central directory is missing or damaged/,
    },
    {
      name: 'a file that is no archive',
      archives: { code: Buffer.from('just some text, not an archive at all') },
      code: 'INVALID_ARCHIVE',
      message: /^layer "code": not an archive/,
    },
  ];
  for (const { name, archives, code = 'UNSAFE_ARCHIVE_ENTRY', message, limits = LIMITS } of cases) {
    it(`refuses ${name} and removes the target`, async (t) => {
      const dir = await tempDir(t);
      const target = path.join(dir, 'out');
      const input = await layers(dir, archives);
      await refused(unpackLayers({ layers: input, target, limits }), target, code, message);
    });
  }

  it('removes the target when aborted', async (t) => {
    const dir = await tempDir(t);
    const target = path.join(dir, 'out');
    const input = await layers(dir, { code: tarBytes([{ path: 'a', body: 'x' }]) });
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(unpackLayers({ layers: input, target, limits: LIMITS, signal: controller.signal }), { name: 'AbortError' });
    assert.equal(existsSync(target), false);
  });
});

describe('unpackLayers on a full disk', () => {
  type Errno = 'ENOSPC' | 'EDQUOT';

  /** The error a write or create gets from a full disk (or a spent quota), shaped as Node's own. */
  function noSpace(code: Errno, syscall: string, file: string): NodeJS.ErrnoException {
    const text = code === 'ENOSPC' ? 'no space left on device' : 'disk quota exceeded';
    return Object.assign(new Error(`${code}: ${text}, ${syscall} '${file}'`), { code, errno: code === 'ENOSPC' ? -28 : -122, syscall, path: file });
  }

  /**
   * Runs `work` while the disk under `dir` is full: file data written there past `bytes` in all
   * (a short write first, then the error), or files created there past `files`, fail with `code`,
   * as the kernel fails them. Node's fs is patched for that time only, and
   * syncBuiltinESMExports carries the patch to the named imports of tree-writer.ts; writes
   * anywhere else pass through.
   */
  async function withFullDisk<T>(dir: string, limits: { code: Errno; bytes?: number; files?: number }, work: () => Promise<T>): Promise<T> {
    const inside = (file: string): boolean => file.startsWith(`${dir}${path.sep}`);
    const fdPath = (fd: number): string => readlinkSync(`/proc/self/fd/${fd}`);
    const realWrite = fs.writeSync;
    const realOpen = fs.openSync;
    let written = 0;
    let created = 0;
    // The tree writer writes a Buffer with an offset and a length; any other call passes through untouched.
    const write = mock.method(fs, 'writeSync', (...args: unknown[]): number => {
      const [fd, buffer, offset, length] = args as [number, Buffer, number, number];
      if (limits.bytes === undefined || !inside(fdPath(fd))) return Reflect.apply(realWrite, fs, args) as number;
      const room = limits.bytes - written;
      if (room <= 0) throw noSpace(limits.code, 'write', fdPath(fd));
      const count = realWrite(fd, buffer, offset, Math.min(length, room));
      written += count;
      return count;
    });
    const open = mock.method(fs, 'openSync', (...args: unknown[]): number => {
      const [file, flags] = args;
      if (limits.files !== undefined && inside(String(file)) && typeof flags === 'number' && (flags & fs.constants.O_CREAT) !== 0) {
        if (created >= limits.files) throw noSpace(limits.code, 'open', String(file));
        created += 1;
      }
      return Reflect.apply(realOpen, fs, args) as number;
    });
    syncBuiltinESMExports();
    try {
      return await work();
    } finally {
      write.mock.restore();
      open.mock.restore();
      syncBuiltinESMExports();
    }
  }

  /** Every path under `dir` with what it holds (file bytes, link target, or a directory marker). */
  async function snapshot(dir: string): Promise<Record<string, string>> {
    const found: Record<string, string> = {};
    for (const name of (await readdir(dir, { recursive: true })).sort()) {
      const file = path.join(dir, name);
      const stats = await lstat(file);
      found[name] = stats.isSymbolicLink() ? `-> ${await readlink(file)}` : stats.isDirectory() ? 'dir' : (await readFile(file)).toString('base64');
    }
    return found;
  }

  const cases: { name: string; limits: { code: Errno; bytes?: number; files?: number } }[] = [
    { name: 'the disk fills up in the middle of a file', limits: { code: 'ENOSPC', bytes: 100 * 1024 } },
    { name: 'no inode is left for the next file', limits: { code: 'ENOSPC', files: 3 } },
    { name: 'the agent\'s disk quota runs out', limits: { code: 'EDQUOT', bytes: 100 * 1024 } },
  ];
  for (const { name, limits } of cases) {
    it(`fails with INSUFFICIENT_STORAGE when ${name}, removes the half-built release and touches nothing else`, async (t) => {
      // A configuration directory as the agent keeps it: a current release, and the cached layer beside.
      const dir = await tempDir(t);
      const confDir = path.join(dir, 'site');
      await mkdir(path.join(confDir, 'releases', 'old', 'app'), { recursive: true });
      await writeFile(path.join(confDir, 'releases', 'old', 'app', 'index.html'), 'old release');
      await symlink(path.join('releases', 'old'), path.join(confDir, 'current'));
      const input = await layers(dir, {
        base: tarBytes([{ path: 'app/' }, { path: 'app/a.txt', body: 'a' }, { path: 'app/b.txt', body: 'b' }]),
        code: gzipSync(tarBytes([{ path: 'app/big.bin', body: Buffer.alloc(1024 * 1024, 7) }, { path: 'app/c.txt', body: 'c' }, { path: 'app/d.txt', body: 'd' }])),
      });
      const before = await snapshot(dir);
      const target = path.join(confDir, 'releases', '.tmp-new');

      await withFullDisk(confDir, limits, () => refused(
        unpackLayers({ layers: input, target, limits: LIMITS }), target, 'INSUFFICIENT_STORAGE',
        /^no space left on the device while unpacking layer "code" into .*\.tmp-new$/,
      ));
      assert.deepEqual(await snapshot(dir), before, 'only the half-built release was there to remove');
      // Once there is room again, the same layers unpack into the same place.
      await unpackLayers({ layers: input, target, limits: LIMITS });
      assert.equal((await stat(path.join(target, 'app', 'big.bin'))).size, 1024 * 1024);
    });
  }
});
