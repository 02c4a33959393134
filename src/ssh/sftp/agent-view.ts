/**
 * deploy-agent's SFTP view, read-only as in deploy-tools: `/configs/<name>.json` (each
 * configuration's current revision in deploy-tools' JSON, `src/core/deploy-tools-json.ts`) and
 * `/files/<sha256>` (blobs streamed from the store, verified as they are read). Any agent key
 * reads every configuration, as with deploy-tools' service keys.
 */
import type { Readable } from 'node:stream';
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';
import { renderDeployToolsJson } from '../../core/deploy-tools-json.ts';
import type { Store } from '../../store/contract.ts';
import type { Logger } from '../../lib/logger.ts';
import { answerRealpath, directoryAttrs, entry, fileAttrs, HandleTable, normalizePath, OPEN, refuseChanges, STATUS } from './common.ts';

/** Largest READ answered, in bytes (clients ask for 32 KiB; the protocol allows them to ask for more). */
const MAX_READ_BYTES = 256 * 1024;
/** Most entries a directory listing shows, and how many go in one READDIR answer. */
const MAX_LISTING = 10_000;
const LISTING_BATCH = 100;

/** Reads a blob front to back, reopening at the requested offset when a client seeks. */
class BlobReader {
  readonly #store: Store;
  readonly #sha256: string;
  readonly size: number;
  #stream: Readable | undefined;
  #chunks: AsyncIterator<Buffer> | undefined;
  #pending: Buffer = Buffer.alloc(0);
  #position = 0;

  constructor(store: Store, sha256: string, size: number) {
    this.#store = store;
    this.#sha256 = sha256;
    this.size = size;
  }

  /** Up to `length` bytes at `offset`; undefined at the end of the blob. */
  async read(offset: number, length: number): Promise<Buffer | undefined> {
    if (offset >= this.size) return undefined;
    if (!this.#chunks || offset !== this.#position) {
      this.close();
      const { stream } = await this.#store.getBlob(this.#sha256, offset === 0 ? undefined : { start: offset });
      this.#stream = stream;
      this.#chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      this.#pending = Buffer.alloc(0);
      this.#position = offset;
    }
    while (this.#pending.length < length) {
      const next = await this.#chunks!.next();
      if (next.done) break;
      this.#pending = this.#pending.length === 0 ? next.value : Buffer.concat([this.#pending, next.value]);
    }
    const out = this.#pending.subarray(0, length);
    this.#pending = this.#pending.subarray(out.length);
    this.#position += out.length;
    return out.length > 0 ? out : undefined;
  }

  /** Releases the open stream. */
  close(): void {
    this.#stream?.destroy();
    this.#stream = undefined;
    this.#chunks = undefined;
  }
}

/** An open file (a rendered configuration or a blob) or an open directory listing. */
type Open =
  | { kind: 'bytes'; data: Buffer; attrs: Attributes }
  | { kind: 'blob'; reader: BlobReader; attrs: Attributes; queue: Promise<unknown> }
  | { kind: 'dir'; entries: FileEntry[]; sent: number };

/** `/configs/<name>.json` → name, or undefined for any other path. */
function configName(normalized: string): string | undefined {
  const match = /^\/configs\/(.+)\.json$/.exec(normalized);
  return match && !match[1]!.includes('/') ? match[1] : undefined;
}

/** `/files/<sha256>` → sha256, or undefined for any other path. */
function blobName(normalized: string): string | undefined {
  return /^\/files\/([0-9a-f]{64})$/.exec(normalized)?.[1];
}

/** Serves the read-only agent view on an SFTP session. */
export function serveAgentView(sftp: SFTPWrapper, deps: { store: Store; logger: Logger }): void {
  const { store } = deps;
  const handles = new HandleTable<Open>();

  const renderConfig = async (name: string): Promise<{ data: Buffer; attrs: Attributes } | undefined> => {
    const configuration = await store.getConfiguration(name);
    if (!configuration) return undefined;
    const data = Buffer.from(renderDeployToolsJson(configuration));
    return { data, attrs: fileAttrs(data.length, new Date(configuration.updatedAt)) };
  };

  /** Attributes of a path, or undefined when it does not exist. */
  const statPath = async (normalized: string): Promise<Attributes | undefined> => {
    if (normalized === '/' || normalized === '/configs' || normalized === '/files') return directoryAttrs();
    const config = configName(normalized);
    if (config !== undefined) return (await renderConfig(config))?.attrs;
    const sha256 = blobName(normalized);
    const info = sha256 ? await store.statBlob(sha256) : undefined;
    return info ? fileAttrs(info.size, new Date(info.createdAt)) : undefined;
  };

  const listing = async (normalized: string): Promise<FileEntry[] | undefined> => {
    if (normalized === '/') return [entry('configs', directoryAttrs()), entry('files', directoryAttrs())];
    if (normalized === '/configs') {
      const configurations = (await store.listConfigurations()).slice(0, MAX_LISTING);
      return configurations.map((c) => entry(`${c.name}.json`, fileAttrs(Buffer.byteLength(renderDeployToolsJson(c)), new Date(c.updatedAt))));
    }
    if (normalized === '/files') {
      const blobs = new Map<string, FileEntry>();
      for (const component of await store.listComponents()) {
        for (const version of await store.listVersions(component.name)) {
          if (blobs.size >= MAX_LISTING) break;
          blobs.set(version.blob, entry(version.blob, fileAttrs(version.size, new Date(version.createdAt))));
        }
      }
      return [...blobs.values()];
    }
    return undefined;
  };

  /** Runs an async answer, turning an unexpected failure into FAILURE rather than silence. */
  const answer = (reqid: number, work: () => Promise<void>): void => {
    work().catch((error: unknown) => {
      deps.logger.warn({ err: error }, 'ssh agent sftp request failed');
      sftp.status(reqid, STATUS.FAILURE, (error as Error).message);
    });
  };

  // A malformed packet ends this session only, never the server.
  sftp.on('error', (error: Error) => deps.logger.debug({ err: error }, 'ssh sftp session error'));
  sftp.on('REALPATH', (reqid: number, requested: string) => answerRealpath(sftp, reqid, requested));
  const stat = (reqid: number, requested: string): void => answer(reqid, async () => {
    const attrs = await statPath(normalizePath(requested));
    if (attrs) sftp.attrs(reqid, attrs);
    else sftp.status(reqid, STATUS.NO_SUCH_FILE);
  });
  sftp.on('STAT', stat);
  sftp.on('LSTAT', stat);

  sftp.on('OPENDIR', (reqid: number, requested: string) => answer(reqid, async () => {
    const entries = await listing(normalizePath(requested));
    if (!entries) return sftp.status(reqid, STATUS.NO_SUCH_FILE);
    const handle = handles.add({ kind: 'dir', entries, sent: 0 });
    if (!handle) return sftp.status(reqid, STATUS.FAILURE, 'too many handles open at once');
    sftp.handle(reqid, handle);
  }));
  sftp.on('READDIR', (reqid: number, handle: Buffer) => {
    const open = handles.get(handle);
    if (open?.kind !== 'dir') return sftp.status(reqid, STATUS.FAILURE, 'not a directory handle');
    if (open.sent >= open.entries.length) return sftp.status(reqid, STATUS.EOF);
    const batch = open.entries.slice(open.sent, open.sent + LISTING_BATCH);
    open.sent += batch.length;
    sftp.name(reqid, batch);
  });

  sftp.on('OPEN', (reqid: number, filename: string, flags: number) => answer(reqid, async () => {
    if (flags & (OPEN.WRITE | OPEN.APPEND | OPEN.CREAT | OPEN.TRUNC)) return sftp.status(reqid, STATUS.PERMISSION_DENIED, 'read-only: agents cannot write');
    const normalized = normalizePath(filename);
    let open: Open | undefined;
    const config = configName(normalized);
    const rendered = config === undefined ? undefined : await renderConfig(config);
    if (rendered) open = { kind: 'bytes', ...rendered };
    const sha256 = blobName(normalized);
    const info = sha256 ? await store.statBlob(sha256) : undefined;
    if (info) open = { kind: 'blob', reader: new BlobReader(store, info.sha256, info.size), attrs: fileAttrs(info.size, new Date(info.createdAt)), queue: Promise.resolve() };
    if (!open) return sftp.status(reqid, STATUS.NO_SUCH_FILE);
    const handle = handles.add(open);
    if (!handle) return sftp.status(reqid, STATUS.FAILURE, 'too many files open at once');
    sftp.handle(reqid, handle);
  }));

  sftp.on('READ', (reqid: number, handle: Buffer, offset: number, length: number) => {
    const open = handles.get(handle);
    const size = Math.min(length, MAX_READ_BYTES);
    if (open?.kind === 'bytes') {
      if (offset >= open.data.length) return sftp.status(reqid, STATUS.EOF);
      return sftp.data(reqid, open.data.subarray(offset, offset + size));
    }
    if (open?.kind !== 'blob') return sftp.status(reqid, STATUS.FAILURE, 'not a file handle');
    // Reads of one handle are answered in the order they came, each after the one before.
    open.queue = open.queue.then(async () => {
      try {
        const chunk = await open.reader.read(offset, size);
        if (chunk) sftp.data(reqid, chunk);
        else sftp.status(reqid, STATUS.EOF);
      } catch (error) {
        deps.logger.warn({ err: error }, 'ssh agent sftp read failed');
        sftp.status(reqid, STATUS.FAILURE, (error as Error).message);
      }
    });
  });

  sftp.on('FSTAT', (reqid: number, handle: Buffer) => {
    const open = handles.get(handle);
    if (!open || open.kind === 'dir') return sftp.status(reqid, STATUS.FAILURE, 'not a file handle');
    sftp.attrs(reqid, open.attrs);
  });

  sftp.on('CLOSE', (reqid: number, handle: Buffer) => {
    const open = handles.take(handle);
    if (!open) return sftp.status(reqid, STATUS.FAILURE, 'unknown handle');
    if (open.kind === 'blob') open.reader.close();
    sftp.status(reqid, STATUS.OK);
  });

  refuseChanges(sftp, ['WRITE', 'FSETSTAT', 'SETSTAT', 'REMOVE', 'RENAME', 'MKDIR', 'RMDIR', 'SYMLINK', 'READLINK'], 'read-only: agents cannot change anything');

  // The client's EOF ends the session: close the channel as an sftp-server process would by exiting.
  sftp.on('end', () => sftp.end());
  sftp.on('close', () => {
    for (const open of handles.values()) if (open.kind === 'blob') open.reader.close();
  });
}
