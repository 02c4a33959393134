/**
 * The streaming tar reader that image import and the agent's unpack share: what follows the
 * end-of-archive marker is read only as far as padding goes, and no more tar is read than the
 * entries account for; good and bad side by side.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Header, Pax } from 'tar';
import { readTarLayer } from '../src/core/archive/tar-reader.ts';
import { StrataError } from '../src/core/errors.ts';

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
