/**
 * Upload-time inspection: the server writes every uploaded byte into a sink while it stores them,
 * and the inspector decides from the stream alone whether the archive is acceptable. It sniffs the
 * format from magic bytes, gunzips and parses tars on the fly with bounded memory, and never
 * stalls the upload: once it has a verdict it swallows the remaining bytes. Gunzipping stops at
 * a refusal, and the tar inspector refuses more gunzipped bytes than the entries account for
 * (`tarBytesAllowed` in tar-inspector.ts), so inflating costs at most that, whatever the gzip's ratio.
 */
import { Writable } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import { EntryChecker, invalidArchive } from './entry-rules.ts';
import { isTarHeader, TarInspector, TRUNCATED } from './tar-inspector.ts';
import type { ArchiveFormat, ArchiveLimits, ArchiveSummary } from './types.ts';

export type { ArchiveFormat, ArchiveLimits, ArchiveSummary } from './types.ts';
export { inspectZip, type RangeReader } from './zip-inspect.ts';

/** The streaming verdict: a checked tar summary, or `zip`, whose check needs random access (see `inspectZip`). */
export type StreamingVerdict = ArchiveSummary | { format: 'zip' };

/** Bytes needed to recognise every format: one tar header block. */
const SNIFF_BYTES = 512;

/** The format the first bytes announce, or undefined when they fit none. */
function sniff(head: Buffer): 'gzip' | 'zip' | 'tar' | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  const magic = head.subarray(0, 4).toString('latin1');
  if (magic === 'PK\x03\x04' || magic === 'PK\x05\x06') return 'zip';
  if (isTarHeader(head)) return 'tar';
  return undefined;
}

/** Maps a zlib error to the archive error an operator should see. */
function gzipError(error: NodeJS.ErrnoException): Error {
  if (error.code === 'Z_BUF_ERROR') return invalidArchive(TRUNCATED, error);
  return invalidArchive(`gzip data is corrupt: ${error.message}`, error);
}

/** One upload's inspection: the state behind the sink, settled once into the verdict. */
class Inspection {
  readonly verdict: Promise<StreamingVerdict>;
  readonly #checker: EntryChecker;
  #head: Buffer | undefined = Buffer.alloc(0);
  #tar: TarInspector | undefined;
  #format: ArchiveFormat | undefined;
  #gunzip: Gunzip | undefined;
  #settled = false;
  #ended = false;
  #resolve!: (verdict: StreamingVerdict) => void;
  #reject!: (error: Error) => void;

  constructor(limits: ArchiveLimits) {
    this.#checker = new EntryChecker(limits);
    this.verdict = new Promise<StreamingVerdict>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // A refusal may be known long before the upload ends; the caller awaits it only after ending the sink.
    this.verdict.catch(() => undefined);
  }

  /** Takes the next chunk; `done` is called when more may be written (at once after a verdict). */
  write(chunk: Buffer, done: () => void): void {
    if (this.#settled) return done();
    if (this.#head !== undefined) {
      this.#head = Buffer.concat([this.#head, chunk]);
      // gzip and zip announce themselves in 4 bytes; only a plain tar needs a whole header block.
      const early = this.#head.length >= 4 && sniff(this.#head.subarray(0, 4)) !== undefined;
      if (this.#head.length < SNIFF_BYTES && !early) return done();
      chunk = this.#head;
      this.#head = undefined;
      this.#choose(chunk);
      if (this.#settled) return done();
    }
    this.#feed(chunk, done);
  }

  /** The upload is complete: settles the verdict once the last bytes are parsed. */
  end(): void {
    this.#ended = true;
    if (this.#settled) return;
    if (this.#head !== undefined) {
      const head = this.#head;
      this.#head = undefined;
      this.#choose(head);
      if (this.#settled) return;
      this.#feed(head, () => undefined);
      if (this.#settled) return;
    }
    if (this.#gunzip !== undefined) {
      this.#gunzip.once('end', () => this.#finishTar());
      this.#gunzip.end();
    } else {
      this.#finishTar();
    }
  }

  /** The upload broke off: refuses the archive unless a verdict was already reached. */
  abort(error: Error | null): void {
    // Writable destroys itself after 'finish' too; that is not an abort.
    if (this.#ended && error === null) return;
    this.#gunzip?.destroy();
    this.#settle(error ?? invalidArchive(TRUNCATED));
  }

  #choose(head: Buffer): void {
    const kind = sniff(head);
    if (kind === undefined) {
      const what = head.length === 0 ? 'the upload is empty' : 'no gzip, zip or tar signature at its start';
      this.#settle(invalidArchive(`not an archive: ${what} (expected a tar.gz, a tar or a zip)`));
    } else if (kind === 'zip') {
      this.#settle({ format: 'zip' });
    } else {
      this.#format = kind === 'gzip' ? 'tar.gz' : 'tar';
      this.#tar = new TarInspector(this.#checker);
      if (kind === 'gzip') this.#startGunzip(this.#tar);
    }
  }

  #startGunzip(tar: TarInspector): void {
    const gunzip = createGunzip({ chunkSize: 64 * 1024 });
    gunzip.on('data', (data: Buffer) => {
      // Entries are drained synchronously, so the parser holds at most one chunk: no need to pause.
      tar.write(data);
      if (tar.failure !== undefined) this.#settle(tar.failure);
    });
    gunzip.on('error', (error: NodeJS.ErrnoException) => this.#settle(gzipError(error)));
    this.#gunzip = gunzip;
  }

  #feed(chunk: Buffer, done: () => void): void {
    const tar = this.#tar;
    if (tar === undefined) return done();
    if (this.#gunzip === undefined) {
      tar.write(chunk);
      if (tar.failure !== undefined) this.#settle(tar.failure);
      return done();
    }
    // Keep gunzipping past the tar's end-of-archive marker, so a gzip cut short is still refused;
    // the tar inspector refuses more than MAX_TRAILING_BYTES there, which stops it.
    if (this.#gunzip.write(chunk)) return done();
    const gunzip = this.#gunzip;
    const release = (): void => {
      gunzip.off('drain', release);
      gunzip.off('close', release);
      done();
    };
    gunzip.on('drain', release);
    gunzip.on('close', release);
  }

  #finishTar(): void {
    if (this.#settled || this.#tar === undefined || this.#format === undefined) return;
    const failure = this.#tar.end();
    if (failure !== undefined) return this.#settle(failure);
    this.#settle({ format: this.#format, entries: this.#checker.entries, unpackedBytes: this.#checker.unpackedBytes });
  }

  #settle(outcome: StreamingVerdict | Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#head = undefined;
    if (outcome instanceof Error) {
      // Stop decompressing a refused upload; later bytes are swallowed by `write`.
      this.#gunzip?.destroy();
      this.#reject(outcome);
    } else {
      this.#resolve(outcome);
    }
  }
}

/** Begins inspecting a stream of bytes; write every byte of the upload into `sink`, end it, then await `verdict`. */
export function startArchiveInspection(limits: ArchiveLimits): { sink: Writable; verdict: Promise<StreamingVerdict> } {
  const inspection = new Inspection(limits);
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      inspection.write(chunk, () => callback());
    },
    final(callback) {
      inspection.end();
      callback();
    },
    destroy(error, callback) {
      inspection.abort(error);
      callback(error);
    },
  });
  return { sink, verdict: inspection.verdict };
}
