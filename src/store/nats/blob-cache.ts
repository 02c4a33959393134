/**
 * Each replica's local copies of NATS blobs. Serving a blob straight from the object store costs a
 * JetStream consumer per download and cannot seek; with many agents fetching the same new layer
 * at once (every agent after a change), the consumers time out and downloads break. So a replica
 * copies a blob out of NATS once — one fill per blob at a time, however many requests wait for
 * it — checks its hash, and serves every download and range from the local file, as the embedded
 * store does. A copy is named by the blob and the object's fingerprint (object, metadata revision,
 * last chunk sequence), so a rewritten object is never answered from an old copy. The copies are a
 * cache: bounded in bytes (least recently served first out), safe to delete at any time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { Sha256Meter } from '../../lib/sha256-meter.ts';
import type { ObjectInfo } from '@nats-io/obj';
import { StrataError } from '../../core/errors.ts';
import { corrupt } from '../blob-errors.ts';
import type { BlobRecord } from './blob-records.ts';
import type { NatsContext } from './context.ts';
import type { VerifiedFiles } from '../verified-file.ts';
import { objectChunks } from './objects.ts';

/** A copy served this recently is never evicted (a download may be about to open it). */
const IN_USE_MS = 60_000;

/** The local copies of one store. */
export class LocalBlobCache {
  readonly dir: string;
  /** Copies whose bytes hashed correctly, for range reads (see `../verified-file.ts`). */
  readonly verified: VerifiedFiles = new Map();
  private readonly maxBytes: number;
  private readonly filling = new Map<string, Promise<string>>();
  /** When each copy was last served (ms), for eviction. */
  private readonly used = new Map<string, number>();
  private ready: Promise<void> | undefined;

  constructor(dir: string, maxBytes: number) {
    this.dir = dir;
    this.maxBytes = maxBytes;
  }

  /** The path of a verified local copy of the blob, filling it from NATS when there is none. */
  async file(ctx: NatsContext, record: BlobRecord, object: ObjectInfo, fingerprint: string): Promise<string> {
    const name = `${record.sha256}.${createHash('sha256').update(fingerprint).digest('hex').slice(0, 16)}`;
    const file = path.join(this.dir, name);
    this.used.set(file, Date.now());
    const pending = this.filling.get(name);
    if (pending) return pending;
    try {
      await access(file);
      return file;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const fill = this.fill(ctx, record, object, file).finally(() => this.filling.delete(name));
    this.filling.set(name, fill);
    return fill;
  }

  /** Copies the object into `file` (via a temp file), refusing bytes that do not hash to the blob. */
  private async fill(ctx: NatsContext, record: BlobRecord, object: ObjectInfo, file: string): Promise<string> {
    this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).then(() => undefined);
    await this.ready;
    const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    const meter = new Sha256Meter();
    try {
      await pipeline(Readable.from(objectChunks(ctx, object), { objectMode: false }), meter, createWriteStream(temp, { flags: 'wx', mode: 0o600 }), { signal: ctx.closing });
      // Fewer bytes than recorded: the read ended early (NATS busy or electing), not rot; a retry may do.
      if (meter.bytes < record.size) throw new StrataError('STORE_UNAVAILABLE', `reading blob ${record.sha256} out of NATS ended after ${meter.bytes} of ${record.size} bytes`);
      if (meter.bytes !== record.size || meter.sha256() !== record.sha256) throw corrupt(record.sha256);
      await rename(temp, file);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    await this.evict(file).catch(() => undefined);
    return file;
  }

  /** Removes the least recently served copies (never `keep`) until the cache fits its bound. */
  private async evict(keep: string): Promise<void> {
    const entries = [];
    let total = 0;
    for (const name of await readdir(this.dir)) {
      if (name.endsWith('.tmp')) continue;
      const file = path.join(this.dir, name);
      const stats = await stat(file).catch(() => undefined);
      if (!stats) continue;
      total += stats.size;
      entries.push({ file, size: stats.size, used: this.used.get(file) ?? stats.mtimeMs });
    }
    entries.sort((a, b) => a.used - b.used);
    const now = Date.now();
    for (const entry of entries) {
      if (total <= this.maxBytes) break;
      if (entry.file === keep || now - entry.used < IN_USE_MS) continue;
      await rm(entry.file, { force: true });
      this.used.delete(entry.file);
      total -= entry.size;
    }
  }
}
