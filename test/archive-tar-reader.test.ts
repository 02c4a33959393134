/**
 * The streaming tar reader that image import and the agent's unpack share: it reads every tar
 * format as node-tar's Parser (the upload-time inspector) does, however the bytes are chunked;
 * what follows the end-of-archive marker is read only as far as padding goes, and no more tar is
 * read than the entries account for; good and bad side by side.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Header, Pax, Parser, type ReadEntry } from 'tar';
import { readTarLayer, type TarEntry } from '../src/core/archive/tar-reader.ts';
import { tarArchiveEntry } from '../src/core/archive/tar-inspector.ts';
import { StrataError } from '../src/core/errors.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** A plain tar of one small file, with its end-of-archive marker. */
function smallTar(): Buffer {
  const header = Buffer.alloc(512);
  new Header({ path: 'a.txt', type: 'File', size: 1, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }).encode(header);
  const body = Buffer.alloc(512);
  body.write('a');
  return Buffer.concat([header, body, Buffer.alloc(1024)]);
}

/** Reads `chunks` as a layer; returns the paths of its entries. */
async function read(chunks: Iterable<Buffer>, gzip: boolean): Promise<string[]> {
  const paths: string[] = [];
  await readTarLayer(Readable.from(chunks), gzip, async (entry, body) => {
    paths.push(entry.path);
    if (body) for await (const _ of body);
  });
  return paths;
}

/** Asserts that reading rejects with INVALID_ARCHIVE about data after the marker. */
async function refusedTrailing(reading: Promise<unknown>): Promise<void> {
  await assert.rejects(reading, (error: unknown) => {
    assert.ok(error instanceof StrataError, `not a StrataError: ${String(error)}`);
    assert.equal(error.code, 'INVALID_ARCHIVE');
    assert.match(error.message, /^archive has more than 1048576 bytes after the tar's end-of-archive marker/);
    return true;
  });
}

describe('data after the end-of-archive marker', () => {
  const tar = smallTar();
  const mib = 1024 * 1024;

  it('reads the padding tar adds to fill its last record (up to 1 MiB with -b 2048)', async () => {
    const padded = Buffer.concat([tar, Buffer.alloc(mib - tar.length)]);
    assert.deepEqual(await read([padded], false), ['a.txt']);
    assert.deepEqual(await read([gzipSync(padded)], true), ['a.txt']);
  });

  it('refuses more than 1 MiB after the marker', () => refusedTrailing(read([tar, Buffer.alloc(2 * mib)], false)));

  it('refuses a gzip bomb (a small tar.gz, then 2 GiB of zeros) without reading it all', async () => {
    const zeros = gzipSync(Buffer.alloc(4 * mib), { level: 9 });
    let members = 0;
    function* bomb(): Generator<Buffer> {
      yield gzipSync(tar);
      for (; members < 512; members++) yield zeros;
    }
    await refusedTrailing(read(bomb(), true));
    // Readable.from reads 16 ahead; the point is that it stopped long before 512.
    assert.ok(members <= 32, `read ${members} members of zeros`);
  });
});

describe('tar bytes the entries do not account for', () => {
  const tar = smallTar();
  const comment = (bytes: number): Buffer => new Pax({ comment: 'c'.repeat(bytes) }).encode();

  it('reads metadata within what its entries account for', async () => {
    assert.deepEqual(await read([gzipSync(Buffer.concat([...Array<Buffer>(10).fill(comment(60 * 1024)), tar]))], true), ['a.txt']);
  });

  it('reads a tar of large files handed over in one chunk, before the parser has announced them all', async () => {
    const file = (name: string, size: number): Buffer => {
      const header = Buffer.alloc(512);
      new Header({ path: name, type: 'File', size, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }).encode(header);
      return Buffer.concat([header, Buffer.alloc(Math.ceil(size / 512) * 512, 0x61)]);
    };
    const big = Buffer.concat([file('a', 1024 * 1024), file('b', 1024 * 1024), file('c', 1024 * 1024), Buffer.alloc(1024)]);
    assert.deepEqual(await read([big], false), ['a', 'b', 'c']);
  });

  it('refuses more metadata than its entries account for, before reading the rest', async () => {
    let fed = 0;
    function* repeated(): Generator<Buffer> {
      for (; fed < 1000; fed++) yield comment(60 * 1024);
      yield tar;
    }
    await assert.rejects(read(repeated(), false), (error: unknown) => {
      assert.ok(error instanceof StrataError, `not a StrataError: ${String(error)}`);
      assert.equal(error.code, 'INVALID_ARCHIVE');
      assert.match(error.message, /^tar data runs past what its 0 entries account for \(over \d+ bytes\): too much metadata/);
      return true;
    });
    assert.ok(fed < 100, `read ${fed} metadata headers of 60 KiB`);
  });
});

/** What a reader saw of one entry: the rules' view, mode, mtime, and the SHA-256 of the body it read. */
interface Seen {
  path: string;
  kind: string;
  size: number;
  linkTarget?: string;
  mode?: number;
  mtime?: number;
  body?: string;
}

/** `bytes` cut into chunks of `size`. */
function chunked(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
}

/** The entries readTarLayer hands on; every other file's body is left unread, which the reader must skip. */
async function readerView(chunks: Buffer[]): Promise<Seen[]> {
  const seen: Seen[] = [];
  await readTarLayer(Readable.from(chunks), false, async (entry: TarEntry, body) => {
    const view: Seen = { path: entry.path, kind: entry.kind, size: entry.size };
    if (entry.linkTarget !== undefined) view.linkTarget = entry.linkTarget;
    if (entry.mode !== undefined) view.mode = entry.mode;
    if (entry.mtime !== undefined) view.mtime = entry.mtime.getTime();
    if (body !== undefined && seen.length % 2 === 0) {
      const hash = createHash('sha256');
      for await (const chunk of body) hash.update(chunk);
      view.body = hash.digest('hex');
    }
    seen.push(view);
  });
  return seen;
}

/** The same entries as node-tar's Parser reports them, for comparison. */
async function parserView(tar: Buffer): Promise<Seen[]> {
  const seen: Seen[] = [];
  const parser = new Parser({ strict: true });
  parser.on('entry', (entry: ReadEntry) => {
    const rules = tarArchiveEntry(entry);
    const view: Seen = { path: rules.path, kind: rules.kind, size: rules.size };
    if (rules.linkTarget !== undefined) view.linkTarget = rules.linkTarget;
    if (entry.mode !== undefined) view.mode = entry.mode & 0o7777;
    if (entry.mtime !== undefined) view.mtime = entry.mtime.getTime();
    const read = rules.kind === 'file' && seen.length % 2 === 0;
    const hash = createHash('sha256');
    seen.push(view);
    entry.on('data', (chunk: Buffer) => read && hash.update(chunk));
    entry.on('end', () => {
      if (read) view.body = hash.digest('hex');
    });
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('error', reject);
    parser.on('end', resolve);
    parser.end(tar);
  });
  return seen;
}

describe('tar formats and chunking', () => {
  const long = `${'deep/'.repeat(30)}name-${'x'.repeat(120)}.txt`;

  /** A tree with a long path, a long symlink target, a hard link, an empty file, and a file over one 64 KiB chunk. */
  function tree(root: string): void {
    mkdirSync(path.join(root, path.dirname(long)), { recursive: true });
    writeFileSync(path.join(root, long), 'long path\n');
    writeFileSync(path.join(root, 'big.bin'), Buffer.alloc(70_000, 7)); // more than one 64 KiB chunk
    writeFileSync(path.join(root, 'empty'), '');
    writeFileSync(path.join(root, 'ünïcödé.txt'), 'utf-8 name\n', { mode: 0o640 });
    symlinkSync(long, path.join(root, 'link-to-long'));
    execFileSync('ln', [path.join(root, 'big.bin'), path.join(root, 'hard')]);
  }

  for (const format of ['gnu', 'posix', 'ustar'] as const) {
    it(`reads GNU tar's --format=${format} as node-tar's Parser does, in chunks of 1 byte to the whole`, async (t) => {
      const dir = await tempDir(t);
      const root = path.join(dir, 'tree');
      mkdirSync(root);
      tree(root);
      const file = path.join(dir, 'layer.tar');
      // ustar cannot hold the long names: that archive has the rest.
      const names = format === 'ustar' ? ['big.bin', 'empty', 'ünïcödé.txt', 'hard'] : ['.'];
      execFileSync('tar', [`--format=${format}`, '-cf', file, '-C', root, ...names]);
      const tar = readFileSync(file);
      const expected = await parserView(tar);
      assert.ok(expected.length >= 4, `node-tar saw ${expected.length} entries`);
      if (format !== 'ustar') assert.ok(expected.some((entry) => entry.path === `./${long}`), 'the long path is in the archive');
      for (const size of [1, 7, 511, 512, 513, 4096, 65536, tar.length]) {
        assert.deepEqual(await readerView(chunked(tar, size)), expected, `chunks of ${size} bytes`);
      }
    });
  }

  it('applies a global pax record to every entry after it, and a local one to the next entry only', async () => {
    const file = (name: string, body: string, mtime: number): Buffer => {
      const header = Buffer.alloc(512);
      new Header({ path: name, type: 'File', size: Buffer.byteLength(body), mode: 0o644, uid: 0, gid: 0, mtime: new Date(mtime * 1000) }).encode(header);
      const padded = Buffer.alloc(Math.ceil(Buffer.byteLength(body) / 512) * 512);
      padded.write(body);
      return Buffer.concat([header, padded]);
    };
    const tar = Buffer.concat([
      new Pax({ mtime: new Date(1_000_000_000_000) }, true).encode(),
      file('a', 'one', 5),
      new Pax({ path: 'renamed-by-pax' }).encode(),
      file('b', 'two', 6),
      file('c', 'three', 7),
      Buffer.alloc(1024),
    ]);
    const seen = await readerView(chunked(tar, 100));
    assert.deepEqual(seen.map((entry) => [entry.path, entry.mtime]), [
      ['a', 1_000_000_000_000],
      ['renamed-by-pax', 1_000_000_000_000],
      ['c', 1_000_000_000_000],
    ]);
    assert.deepEqual(seen, await parserView(tar));
  });
});

describe('tar headers the reader refuses', () => {
  /** Asserts that reading `tar` rejects with INVALID_ARCHIVE and a message matching `message`. */
  async function refused(tar: Buffer, message: RegExp): Promise<void> {
    await assert.rejects(read([tar], false), (error: unknown) => {
      assert.ok(error instanceof StrataError, `not a StrataError: ${String(error)}`);
      assert.equal(error.code, 'INVALID_ARCHIVE');
      assert.match(error.message, message);
      return true;
    });
  }

  it('refuses a header whose checksum does not match, after reading the good entry before it', async () => {
    const bad = smallTar();
    bad[10] = 0x41; // inside the name field: the stored checksum no longer matches
    const paths: string[] = [];
    await assert.rejects(
      readTarLayer(Readable.from([Buffer.concat([smallTar().subarray(0, 1024), bad])]), false, async (entry) => void paths.push(entry.path)),
      /invalid tar header: checksum failure/,
    );
    assert.deepEqual(paths, ['a.txt']);
  });

  it('refuses a metadata header larger than 64 KiB', () => refused(Buffer.concat([new Pax({ comment: 'c'.repeat(70 * 1024) }).encode(), smallTar()]), /^tar metadata header for "PaxHeader\/" is larger than 65536 bytes$/));

  it('refuses a tar cut short inside a header', () => refused(smallTar().subarray(0, 1024 + 100), /^archive is truncated/));

  /** One entry of `type` whose pax record says `size`, its header `headerSize`, then the small tar. */
  function paxSized(type: 'File' | 'SymbolicLink', size: string, headerSize: number): Buffer {
    const header = Buffer.alloc(512);
    new Header({ path: 'p', type, size: headerSize, linkpath: type === 'SymbolicLink' ? 't' : '', mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }).encode(header);
    return Buffer.concat([new Pax({ size: Number(size) }).encode(), header, Buffer.alloc(Math.ceil(headerSize / 512) * 512), smallTar()]);
  }

  for (const [type, size] of [['File', '1e-20'], ['File', '511.75'], ['SymbolicLink', '1e400']] as const) {
    it(`refuses a pax size of ${size} on a ${type === 'File' ? 'file' : 'symlink'}, at once and whatever the chunking`, async () => {
      const tar = paxSized(type, size, 0);
      for (const chunk of [1, 512, tar.length]) {
        await assert.rejects(read(chunked(tar, chunk), false), /^StrataError: invalid tar header: size "(1e-20|511\.75|Infinity)" of "p" is not a whole number of bytes$/);
      }
    });
  }

  it('reads a pax size that is a whole number, as the next entry\'s body length', async () => {
    assert.deepEqual(await read([paxSized('File', '600', 600)], false), ['p', 'a.txt']);
  });

  it('refuses a body on a symlink larger than the entries account for, even handed over in one chunk', async () => {
    const header = Buffer.alloc(512);
    new Header({ path: 'l', type: 'SymbolicLink', linkpath: 't', size: 4 * 1024 * 1024, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }).encode(header);
    const tar = Buffer.concat([header, Buffer.alloc(4 * 1024 * 1024), smallTar()]);
    await assert.rejects(read([tar], false), /tar data runs past what its 1 entries account for/);
  });

  it('hands on a sparse file bodiless, as an entry type no rule allows', async () => {
    const header = Buffer.alloc(512);
    new Header({ path: 'sparse', type: 'SparseFile', size: 512, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }).encode(header);
    const seen: { entry: TarEntry; body: boolean }[] = [];
    await readTarLayer(Readable.from([Buffer.concat([header, Buffer.alloc(512, 1), smallTar()])]), false, async (entry, body) => void seen.push({ entry, body: body !== undefined }));
    assert.deepEqual(seen.map(({ entry, body }) => [entry.path, entry.kind, entry.typeName, body]), [
      ['sparse', 'other', 'unsupported (SparseFile)', false],
      ['a.txt', 'file', undefined, true],
    ]);
  });
});
