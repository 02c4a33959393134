/**
 * Upload-time archive inspection: accepted formats with their counts, and each safety rule
 * refused with the entry named, good and bad side by side.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Header, Pax, type HeaderData } from 'tar';
import { EntryChecker, symlinkResolution, type ArchiveEntry } from '../src/core/archive/entry-rules.ts';
import { inspectZip, startArchiveInspection, type ArchiveLimits } from '../src/core/archive/inspect.ts';
import { StrataError } from '../src/core/errors.ts';
import type { ErrorCode } from '../src/protocol/error-codes.ts';
import { writeZip, type ZipEntryInput } from './helpers/zip-writer.ts';

const LIMITS: ArchiveLimits = { maxEntries: 1000, maxUnpackedBytes: 1024 * 1024 };

/** A tar entry to craft: header fields plus an optional body. */
type TarInput = HeaderData & { body?: string };

/** Builds a plain tar with hand-written headers, so hostile entries are easy to craft. */
function tar(entries: TarInput[], { endMarker = true } = {}): Buffer {
  const blocks: Buffer[] = [];
  for (const { body, ...data } of entries) {
    const content = Buffer.from(body ?? '');
    const header = Buffer.alloc(512);
    new Header({ mode: 0o644, uid: 0, gid: 0, mtime: new Date(0), type: 'File', ...data, size: content.length }).encode(header);
    blocks.push(header, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  if (endMarker) blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** A pax header carrying `fields`, which apply to the first of `entries`, then the tar of `entries`. */
function paxed(fields: HeaderData, entries: TarInput[]): Buffer {
  return Buffer.concat([new Pax(fields).encode(), tar(entries)]);
}

/** `archive` followed by `count` gzip members of 4 MiB of zeros each: gunzip reads on through them, about 4 KiB apiece. */
function withZeroMembers(archive: Buffer, count: number): Buffer {
  const zeros = gzipSync(Buffer.alloc(4 * 1024 * 1024), { level: 9 });
  return Buffer.concat([archive, ...Array<Buffer>(count).fill(zeros)]);
}

/** Streams `bytes` through a fresh inspection in small chunks and returns the verdict. */
async function inspect(bytes: Buffer, limits = LIMITS): Promise<unknown> {
  const { sink, verdict } = startArchiveInspection(limits);
  for (let offset = 0; offset < bytes.length; offset += 777) {
    if (!sink.write(bytes.subarray(offset, offset + 777))) await new Promise((resolve) => sink.once('drain', resolve));
  }
  sink.end();
  return verdict;
}

/** Inspects an in-memory zip through range reads. */
function inspectZipBuffer(zip: Buffer, limits = LIMITS): Promise<unknown> {
  const read = ({ start, end }: { start: number; end?: number }): Readable =>
    Readable.from([zip.subarray(start, end === undefined ? undefined : end + 1)]);
  return inspectZip(read, zip.length, limits);
}

/** Asserts that `promise` rejects with a StrataError of `code` whose message matches. */
async function refused(promise: Promise<unknown>, code: ErrorCode, message: RegExp | string, entry?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StrataError, `not a StrataError: ${String(error)}`);
    assert.equal(error.code, code);
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    if (entry !== undefined) assert.equal(error.details?.['entry'], entry);
    return true;
  });
}

const unsafe = (bytes: Buffer, entry: string, reason: RegExp): Promise<void> =>
  refused(inspect(bytes), 'UNSAFE_ARCHIVE_ENTRY', reason, entry);

const GOOD_TREE: TarInput[] = [
  { path: 'app/', type: 'Directory', mode: 0o755 },
  { path: 'app/run.sh', body: '#!/bin/sh\necho hi\n', mode: 0o4755 },
  { path: 'app/current', type: 'SymbolicLink', linkpath: 'run.sh' },
  { path: 'app/again', type: 'Link', linkpath: 'app/run.sh' },
];

describe('accepted archives', () => {
  it('accepts a tar.gz and counts its entries and bytes (setuid bits are not a reason to refuse)', async () => {
    assert.deepEqual(await inspect(gzipSync(tar(GOOD_TREE))), { format: 'tar.gz', entries: 4, unpackedBytes: 18 });
  });

  it('accepts a plain tar', async () => {
    assert.deepEqual(await inspect(tar(GOOD_TREE)), { format: 'tar', entries: 4, unpackedBytes: 18 });
  });

  it('accepts an empty tar inside gzip', async () => {
    assert.deepEqual(await inspect(gzipSync(Buffer.alloc(10240))), { format: 'tar.gz', entries: 0, unpackedBytes: 0 });
  });

  it('reads paths from pax headers, and applies the rules to them', async () => {
    const withPax = (path: string): Buffer => {
      const pax = new Pax({ path }).encode();
      return Buffer.concat([pax, tar([{ path: 'short-name', body: 'x' }])]);
    };
    assert.deepEqual(await inspect(withPax(`${'d'.repeat(120)}/${'f'.repeat(120)}`)), { format: 'tar', entries: 1, unpackedBytes: 1 });
    await unsafe(withPax('../../escaped'), '../../escaped', /escapes the tree/);
  });

  it('identifies a zip in the stream and checks it through range reads', async () => {
    const zip = writeZip([
      { name: 'app/' },
      { name: 'app/run.sh', data: 'echo hi\n', mode: 0o100755, method: 'deflate' },
      { name: 'app/current', data: 'run.sh', mode: 0o120777 },
    ]);
    assert.deepEqual(await inspect(zip), { format: 'zip' });
    assert.deepEqual(await inspectZipBuffer(zip), { format: 'zip', entries: 3, unpackedBytes: 14 });
  });

  it('accepts an empty zip', async () => {
    const zip = writeZip([]);
    assert.deepEqual(await inspect(zip), { format: 'zip' });
    assert.deepEqual(await inspectZipBuffer(zip), { format: 'zip', entries: 0, unpackedBytes: 0 });
  });
});

describe('not archives', () => {
  it('refuses empty input', () => refused(inspect(Buffer.alloc(0)), 'INVALID_ARCHIVE', /the upload is empty/));
  it('refuses random bytes', () => refused(inspect(randomBytes(4096)), 'INVALID_ARCHIVE', /not an archive/));
  it('refuses a gzip of something that is not a tar', () =>
    refused(inspect(gzipSync(Buffer.from('hello world\n'.repeat(100)))), 'INVALID_ARCHIVE', /not a tar archive/));
  it('refuses a zip whose central directory is missing', async () => {
    const zip = writeZip([{ name: 'a.txt', data: 'hello' }]);
    const cut = zip.subarray(0, zip.length - 40);
    assert.deepEqual(await inspect(cut), { format: 'zip' });
    await refused(inspectZipBuffer(cut), 'INVALID_ARCHIVE', /zip central directory is missing or damaged/);
  });
});

describe('truncation', () => {
  const big = tar([{ path: 'big.bin', body: randomBytes(20000).toString('base64') }, { path: 'b.txt', body: 'b' }]);

  it('refuses a tar.gz cut short', async () => {
    const gz = gzipSync(big);
    assert.deepEqual(await inspect(gz), { format: 'tar.gz', entries: 2, unpackedBytes: 26669 });
    await refused(inspect(gz.subarray(0, gz.length >> 1)), 'INVALID_ARCHIVE', 'archive is truncated: unexpected end of file');
  });

  it('refuses a tar cut in the middle of a file body', () =>
    refused(inspect(big.subarray(0, 10000)), 'INVALID_ARCHIVE', 'archive is truncated: unexpected end of file'));

  it('refuses a tar cut at an entry boundary, without its end-of-archive marker', async () => {
    const whole = tar([{ path: 'a.txt', body: 'a' }]);
    assert.deepEqual(await inspect(whole), { format: 'tar', entries: 1, unpackedBytes: 1 });
    await refused(inspect(tar([{ path: 'a.txt', body: 'a' }], { endMarker: false })), 'INVALID_ARCHIVE', /truncated/);
  });

  it('refuses a tar with a corrupt header after a good one', () => {
    const bytes = tar([{ path: 'a.txt', body: 'a' }, { path: 'b.txt', body: 'b' }]);
    bytes[1024 + 10] = 0x41;
    return refused(inspect(bytes), 'INVALID_ARCHIVE', /invalid tar header: checksum failure/);
  });
});

describe('path rules', () => {
  it('refuses an absolute path', async () => {
    assert.equal(((await inspect(tar([{ path: 'etc/passwd', body: 'x' }]))) as { entries: number }).entries, 1);
    await unsafe(tar([{ path: '/etc/passwd', body: 'x' }]), '/etc/passwd', /path is absolute/);
  });

  it('refuses a ".." component', async () => {
    assert.equal(((await inspect(tar([{ path: 'a/..b', body: 'x' }]))) as { entries: number }).entries, 1);
    await refused(inspect(tar([{ path: '../etc/passwd', body: 'x' }])), 'UNSAFE_ARCHIVE_ENTRY', 'unsafe archive entry "../etc/passwd": path escapes the tree with ".."', '../etc/passwd');
    await unsafe(tar([{ path: 'a/../../b', body: 'x' }]), 'a/../../b', /escapes the tree/);
  });

  it('refuses a symlink whose target leaves the tree or is absolute', async () => {
    await inspect(tar([{ path: 'a/b/link', type: 'SymbolicLink', linkpath: '../../c' }]));
    await unsafe(tar([{ path: 'a/b/link', type: 'SymbolicLink', linkpath: '../../../c' }]), 'a/b/link', /symlink target "..\/..\/..\/c" leaves the tree/);
    await unsafe(tar([{ path: 'link', type: 'SymbolicLink', linkpath: '/etc' }]), 'link', /symlink target "\/etc" is absolute/);
  });

  it('refuses a symlink that escapes through another symlink of the archive', async () => {
    await inspect(tar([{ path: 'a/b', type: 'SymbolicLink', linkpath: '..' }, { path: 'c', type: 'SymbolicLink', linkpath: 'a/b/x' }]));
    await unsafe(
      tar([{ path: 'a/b', type: 'SymbolicLink', linkpath: '..' }, { path: 'c', type: 'SymbolicLink', linkpath: 'a/b/..' }]),
      'c',
      /leaves the tree through other symlinks/,
    );
  });

  it('refuses a hard link whose target leaves the tree or is absolute', async () => {
    await inspect(tar([{ path: 'a', body: 'x' }, { path: 'b', type: 'Link', linkpath: 'a' }]));
    await unsafe(tar([{ path: 'b', type: 'Link', linkpath: '../a' }]), 'b', /hard link target "..\/a" escapes the tree/);
    await unsafe(tar([{ path: 'b', type: 'Link', linkpath: '/etc/shadow' }]), 'b', /hard link target "\/etc\/shadow" is absolute/);
  });

  it('refuses a path or link target longer than Linux allows (in bytes), naming the entry in a short line', async () => {
    const longest = `${'d'.repeat(99)}/`.repeat(40) + 'f'.repeat(96);
    const widest = 'n'.repeat(255);
    assert.equal(Buffer.byteLength(longest), 4096);
    const file = (path: string): Buffer => paxed({ path }, [{ path: 'short', body: 'x' }]);
    const link = (linkpath: string, type: 'SymbolicLink' | 'Link' = 'SymbolicLink'): Buffer => paxed({ linkpath }, [{ path: 'link', type, linkpath: 'short' }]);
    for (const good of [file(longest), file(`a/${widest}`), file('é'.repeat(127)), link(longest), link(`${widest}/x`), link(longest, 'Link')]) {
      assert.equal(((await inspect(good)) as { entries: number }).entries, 1);
    }
    const cut = (name: string): string => `${name.slice(0, 256)}…`;
    await unsafe(file(`${longest}f`), cut(`${longest}f`), /: path is longer than 4096 bytes$/);
    await unsafe(file(`a/${widest}n`), cut(`a/${widest}n`), /: path has a component longer than 255 bytes$/);
    await unsafe(file('é'.repeat(128)), 'é'.repeat(128), /: path has a component longer than 255 bytes$/);
    await unsafe(link(`${longest}f`), 'link', /: symlink target is longer than 4096 bytes$/);
    await unsafe(link(`${widest}n/x`), 'link', /: symlink target has a component longer than 255 bytes$/);
    await unsafe(link(`${longest}f`, 'Link'), 'link', /: hard link target is longer than 4096 bytes$/);
  });

  it('refuses devices and fifos', async () => {
    await unsafe(tar([{ path: 'dev/null', type: 'CharacterDevice' }]), 'dev/null', /character device entries are not allowed/);
    await unsafe(tar([{ path: 'dev/sda', type: 'BlockDevice' }]), 'dev/sda', /block device entries are not allowed/);
    await unsafe(tar([{ path: 'pipe', type: 'FIFO' }]), 'pipe', /fifo entries are not allowed/);
  });

  it('refuses writing through a symlink of the same archive', async () => {
    await inspect(tar([{ path: 'sub/', type: 'Directory' }, { path: 'link', type: 'SymbolicLink', linkpath: 'sub' }, { path: 'sub/file', body: 'x' }]));
    await unsafe(
      tar([{ path: 'link', type: 'SymbolicLink', linkpath: 'sub' }, { path: 'link/file', body: 'x' }]),
      'link/file',
      /path goes through the symlink "link": nothing is written through a symlink/,
    );
  });
});

describe('limits', () => {
  const three = tar([{ path: 'a', body: 'aaaa' }, { path: 'b', body: 'bbbb' }, { path: 'c', body: 'cccc' }]);

  it('refuses more entries than maxEntries', async () => {
    assert.deepEqual(await inspect(three, { maxEntries: 3, maxUnpackedBytes: 100 }), { format: 'tar', entries: 3, unpackedBytes: 12 });
    await refused(inspect(three, { maxEntries: 2, maxUnpackedBytes: 100 }), 'UNSAFE_ARCHIVE_ENTRY', /archive has more than 2 entries/, 'c');
  });

  it('refuses more declared bytes than maxUnpackedBytes', async () => {
    await inspect(three, { maxEntries: 10, maxUnpackedBytes: 12 });
    await refused(inspect(three, { maxEntries: 10, maxUnpackedBytes: 11 }), 'UNSAFE_ARCHIVE_ENTRY', /archive unpacks to more than 11 bytes/, 'c');
  });

  it('counts zip entries and uncompressed sizes against the limits', async () => {
    const zip = writeZip([{ name: 'a', data: 'a'.repeat(100), method: 'deflate' }, { name: 'b', data: 'b' }]);
    await inspectZipBuffer(zip, { maxEntries: 2, maxUnpackedBytes: 101 });
    await refused(inspectZipBuffer(zip, { maxEntries: 1, maxUnpackedBytes: 1000 }), 'UNSAFE_ARCHIVE_ENTRY', /more than 1 entries/, 'b');
    await refused(inspectZipBuffer(zip, { maxEntries: 10, maxUnpackedBytes: 100 }), 'UNSAFE_ARCHIVE_ENTRY', /more than 100 bytes/, 'b');
  });
});

describe('data after the end-of-archive marker, and metadata', () => {
  const small = tar([{ path: 'a.txt', body: 'a' }]);
  const trailing = /^archive has more than 1048576 bytes after the tar's end-of-archive marker/;
  const padded = (record: number): Buffer => Buffer.concat([small, Buffer.alloc(record - (small.length % record))]);

  it('accepts the padding tar adds to fill its last record (10 KiB by default, 1 MiB with -b 2048)', async () => {
    for (const record of [10 * 1024, 1024 * 1024]) {
      assert.deepEqual(await inspect(padded(record)), { format: 'tar', entries: 1, unpackedBytes: 1 });
      assert.deepEqual(await inspect(gzipSync(padded(record))), { format: 'tar.gz', entries: 1, unpackedBytes: 1 });
    }
  });

  it('refuses more than 1 MiB after the marker', () =>
    refused(inspect(Buffer.concat([small, Buffer.alloc(1024 * 1024 + 1024)])), 'INVALID_ARCHIVE', trailing));

  it('refuses a gzip bomb (a small tar.gz, then 2 GiB of zeros) without inflating it', () =>
    refused(inspect(withZeroMembers(gzipSync(small), 512)), 'INVALID_ARCHIVE', trailing));

  it('refuses a metadata header over 64 KiB, and more metadata than the entries account for', async () => {
    const comment = (bytes: number): Buffer => new Pax({ comment: 'c'.repeat(bytes) }).encode();
    assert.deepEqual(await inspect(Buffer.concat([comment(60 * 1024), small])), { format: 'tar', entries: 1, unpackedBytes: 1 });
    await refused(inspect(Buffer.concat([comment(65 * 1024), small])), 'INVALID_ARCHIVE', /^tar metadata header for "PaxHeader\/" is larger than 65536 bytes$/);
    const repeated = gzipSync(Buffer.concat([...Array<Buffer>(40).fill(comment(60 * 1024)), small]));
    await refused(inspect(repeated), 'INVALID_ARCHIVE', /^tar data runs past what its 0 entries account for \(over \d+ bytes\): too much metadata/);
  });
});

describe('bounded work of the symlink checks', () => {
  const LARGE: ArchiveLimits = { maxEntries: 1_000_000, maxUnpackedBytes: 0 };
  const symlink = (path: string, linkTarget: string): ArchiveEntry => ({ path, kind: 'symlink', size: 0, linkTarget });
  const throwsUnsafe = (action: () => void, message: RegExp): void =>
    assert.throws(action, (error: unknown) => error instanceof StrataError && error.code === 'UNSAFE_ARCHIVE_ENTRY' && message.test(error.message));

  it('bounds the memory kept for symlinks', () => {
    const target = `${'t'.repeat(199)}/`.repeat(20);
    const checker = new EntryChecker(LARGE);
    for (let i = 0; i < 15_000; i++) checker.check(symlink(`l${i}`, target));
    throwsUnsafe(() => {
      for (let i = 15_000; i < 20_000; i++) checker.check(symlink(`l${i}`, target));
    }, /^unsafe archive entry "l\d+": the archive's symlinks need more than 67108864 bytes of memory to check/);
  });

  it('bounds the lookups of chains of long symlinks', () => {
    // Each link's 4 KiB target walks 818 directories down and back up before naming the next link: 40 hops in all.
    const hop = (next: string): string => `${'a/'.repeat(818)}${'../'.repeat(818)}${next}`;
    const chain = (links: number): EntryChecker => {
      const checker = new EntryChecker(LARGE);
      for (let i = 0; i < 38; i++) checker.check(symlink(`s${i}`, hop(`s${i + 1}`)));
      checker.check(symlink('s38', 'a'));
      for (let i = 0; i < links; i++) checker.check(symlink(`x${i}`, 's0'));
      return checker;
    };
    chain(10).finish();
    throwsUnsafe(() => chain(1000).finish(), /^unsafe archive entry "x\d+": the archive's symlinks take more than 8388608 steps to resolve/);
  });

  it('walks a long target, and checks deep paths, in time linear in their length', () => {
    const started = performance.now();
    const steps = symlinkResolution([], 'a/'.repeat(60_000));
    let walked = 0;
    let step = steps.next();
    for (; step.done !== true; step = steps.next('other')) walked += 1;
    assert.deepEqual([step.value, walked], [true, 60_000]);
    const deep = Array<string>(2040).fill('a').join('/');
    const checker = new EntryChecker(LARGE);
    checker.check(symlink(`${deep}/link`, 'x'));
    for (let i = 0; i < 300; i++) checker.check({ path: `${deep}/f${i}`, kind: 'file', size: 0 });
    const took = performance.now() - started;
    assert.ok(took < 1000, `took ${Math.round(took)} ms`);
  });
});

describe('zip rules', () => {
  const zipUnsafe = (entries: ZipEntryInput[], entry: string, reason: RegExp): Promise<void> =>
    refused(inspectZipBuffer(writeZip(entries)), 'UNSAFE_ARCHIVE_ENTRY', reason, entry);

  it('refuses absolute paths, ".." and backslashes in names', async () => {
    await inspectZipBuffer(writeZip([{ name: 'dir/file.txt', data: 'x' }]));
    await zipUnsafe([{ name: '/etc/passwd', data: 'x' }], '/etc/passwd', /path is absolute/);
    await zipUnsafe([{ name: 'a/../../x', data: 'x' }], 'a/../../x', /escapes the tree with "\.\."/);
    await zipUnsafe([{ name: '..\\evil.exe', data: 'x' }], '..\\evil.exe', /path contains a backslash/);
  });

  it('refuses a zip symlink whose target leaves the tree', async () => {
    await inspectZipBuffer(writeZip([{ name: 'a/link', data: '../b', mode: 0o120777 }]));
    await zipUnsafe([{ name: 'a/link', data: '../../b', mode: 0o120777 }], 'a/link', /leaves the tree/);
    await zipUnsafe([{ name: 'link', data: '/etc/passwd', mode: 0o120777, method: 'deflate' }], 'link', /is absolute/);
    await zipUnsafe([{ name: 'link', data: 'x'.repeat(5000), mode: 0o120777 }], 'link', /longer than 4096 bytes/);
  });

  it('refuses writing through a zip symlink', () =>
    zipUnsafe([{ name: 'link', data: 'sub', mode: 0o120777 }, { name: 'link/file', data: 'x' }], 'link/file', /goes through the symlink "link"/));

  it('refuses fifos and devices in unix modes', async () => {
    await zipUnsafe([{ name: 'pipe', mode: 0o010644 }], 'pipe', /fifo entries are not allowed/);
    await zipUnsafe([{ name: 'null', mode: 0o020666 }], 'null', /character device entries are not allowed/);
  });
});

describe('the sink', () => {
  it('keeps consuming after an early refusal and after a zip verdict', async () => {
    for (const head of [Buffer.from('not an archive at all'.repeat(50)), writeZip([{ name: 'a', data: 'a' }])]) {
      const { sink, verdict } = startArchiveInspection(LIMITS);
      sink.write(head);
      const settled = await Promise.race([verdict.then(() => 'settled', () => 'settled'), new Promise((resolve) => setTimeout(resolve, 50, 'pending'))]);
      assert.equal(settled, 'settled');
      const chunk = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < 64; i++) assert.equal(sink.write(chunk), true, 'the sink pushed back after its verdict');
      await new Promise<void>((resolve) => sink.end(resolve));
    }
  });

  it('refuses an upload that breaks off', async () => {
    const { sink, verdict } = startArchiveInspection(LIMITS);
    sink.write(gzipSync(tar(GOOD_TREE)).subarray(0, 20));
    sink.destroy();
    await refused(verdict, 'INVALID_ARCHIVE', /truncated/);
  });
});
