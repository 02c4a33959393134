/**
 * deploy-agent's SFTP view, read-only as in deploy-tools: `/configs/<name>.json` (each
 * configuration's current revision in deploy-tools' JSON, `src/core/deploy-tools-json.ts`) and
 * `/files/<sha256>` (blobs streamed from the store, verified as they are read). Any agent key
 * reads every configuration, as with deploy-tools' service keys, and every blob some component
 * version names — not fresh uploads no version names yet.
 *
 * READs are answered one at a time per session, each only once ssh2 has sent the answer before
 * (the client has opened its window for it), and at most MAX_READS_WAITING wait: a client that
 * pipelines READs without reading the answers must not make the server buffer them without end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';
import { renderDeployToolsJson } from '../../core/deploy-tools-json.ts';
import type { Store } from '../../store/contract.ts';
import type { Logger } from '../../lib/logger.ts';
import { BlobReader } from './blob-reader.ts';
import { answerRealpath, directoryAttrs, entry, fileAttrs, HandleTable, normalizePath, OPEN, refuseChanges, STATUS } from './common.ts';

/** Largest READ answered, in bytes (clients ask for 32 KiB; the protocol allows them to ask for more). */
const MAX_READ_BYTES = 256 * 1024;
/** Most entries a directory listing shows, and how many go in one READDIR answer. */
const MAX_LISTING = 10_000;
const LISTING_BATCH = 100;
/** Most READs of one session waiting for an answer (OpenSSH and Go clients keep up to 64 in flight); more are refused. */
export const MAX_READS_WAITING = 128;
/** Longest pause between looks at whether the client has opened its window again, in ms. */
const MAX_SEND_POLL_MS = 100;

/** What ssh2 (1.17) keeps on a server SFTP channel about sending: answers not yet sent, and the client's window. */
interface SendState {
  _buffer: unknown[];
  outgoing: { state: string; window: number };
}

/**
 * Resolves true once ssh2 has sent every earlier answer and the client's window has room, false
 * when the channel is no longer open. ssh2 emits nothing when it drains its buffer after a
 * WINDOW_ADJUST, so this looks again with a growing pause.
 */
async function roomToSend(sftp: SFTPWrapper): Promise<boolean> {
  const state = sftp as unknown as SendState;
  for (let pause = 2; ; pause = Math.min(pause * 2, MAX_SEND_POLL_MS)) {
    if (state.outgoing.state !== 'open') return false;
    if (state._buffer.length === 0 && state.outgoing.window > 0) return true;
    await sleep(pause);
  }
}

/** An open file (a rendered configuration or a blob) or an open directory listing. */
type Open =
  | { kind: 'bytes'; data: Buffer; attrs: Attributes }
  | { kind: 'blob'; reader: BlobReader; attrs: Attributes }
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

  /** Blobs some component version names, with their listing entries; at most `limit`. */
  const versionBlobs = async (limit = Infinity): Promise<Map<string, FileEntry>> => {
    const blobs = new Map<string, FileEntry>();
    for (const component of await store.listComponents()) {
      for (const version of await store.listVersions(component.name)) {
        if (blobs.size >= limit) return blobs;
        blobs.set(version.blob, entry(version.blob, fileAttrs(version.size, new Date(version.createdAt))));
      }
    }
    return blobs;
  };

  // Blobs agents may read, as last looked up; looked up again (one look at a time) on a miss,
  // since a version may have been added since.
  let served = new Set<string>();
  let lookingUp: Promise<Set<string>> | undefined;
  /** Whether a version names `sha256`: agents read only those, as over HTTP only blobs of configurations. */
  const isServed = async (sha256: string): Promise<boolean> => {
    if (served.has(sha256)) return true;
    lookingUp ??= versionBlobs().then((blobs) => new Set(blobs.keys())).finally(() => (lookingUp = undefined));
    served = await lookingUp;
    return served.has(sha256);
  };

  /** Attributes of a path, or undefined when it does not exist. */
  const statPath = async (normalized: string): Promise<Attributes | undefined> => {
    if (normalized === '/' || normalized === '/configs' || normalized === '/files') return directoryAttrs();
    const config = configName(normalized);
    if (config !== undefined) return (await renderConfig(config))?.attrs;
    const sha256 = blobName(normalized);
    const info = sha256 && (await isServed(sha256)) ? await store.statBlob(sha256) : undefined;
    return info ? fileAttrs(info.size, new Date(info.createdAt)) : undefined;
  };

  const listing = async (normalized: string): Promise<FileEntry[] | undefined> => {
    if (normalized === '/') return [entry('configs', directoryAttrs()), entry('files', directoryAttrs())];
    if (normalized === '/configs') {
      const configurations = (await store.listConfigurations()).slice(0, MAX_LISTING);
      return configurations.map((c) => entry(`${c.name}.json`, fileAttrs(Buffer.byteLength(renderDeployToolsJson(c)), new Date(c.updatedAt))));
    }
    if (normalized === '/files') return [...(await versionBlobs(MAX_LISTING)).values()];
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
    const info = sha256 && (await isServed(sha256)) ? await store.statBlob(sha256) : undefined;
    if (info) open = { kind: 'blob', reader: new BlobReader(store, info.sha256, info.size), attrs: fileAttrs(info.size, new Date(info.createdAt)) };
    if (!open) return sftp.status(reqid, STATUS.NO_SUCH_FILE);
    const handle = handles.add(open);
    if (!handle) return sftp.status(reqid, STATUS.FAILURE, 'too many files open at once');
    sftp.handle(reqid, handle);
  }));

  /** Answers one READ of an open file. */
  const answerRead = async (reqid: number, open: Exclude<Open, { kind: 'dir' }>, offset: number, length: number): Promise<void> => {
    const size = Math.min(length, MAX_READ_BYTES);
    if (open.kind === 'bytes') {
      if (offset >= open.data.length) sftp.status(reqid, STATUS.EOF);
      else sftp.data(reqid, open.data.subarray(offset, offset + size));
      return;
    }
    try {
      const chunk = await open.reader.read(offset, size);
      if (chunk) sftp.data(reqid, chunk);
      else sftp.status(reqid, STATUS.EOF);
    } catch (error) {
      deps.logger.warn({ err: error }, 'ssh agent sftp read failed');
      sftp.status(reqid, STATUS.FAILURE, (error as Error).message);
    }
  };

  // READs are answered in the order they came, each once the answer before it is sent.
  let reads: Promise<void> = Promise.resolve();
  let readsWaiting = 0;
  sftp.on('READ', (reqid: number, handle: Buffer, offset: number, length: number) => {
    const open = handles.get(handle);
    if (!open || open.kind === 'dir') return sftp.status(reqid, STATUS.FAILURE, 'not a file handle');
    if (readsWaiting >= MAX_READS_WAITING) return sftp.status(reqid, STATUS.FAILURE, `more than ${MAX_READS_WAITING} reads waiting: read the answers first`);
    readsWaiting += 1;
    reads = reads.then(async () => {
      try {
        if (await roomToSend(sftp)) await answerRead(reqid, open, offset, length);
      } catch (error) {
        // Never leave the chain rejected: every later READ would go unanswered.
        deps.logger.warn({ err: error }, 'ssh agent sftp read failed');
        sftp.status(reqid, STATUS.FAILURE, (error as Error).message);
      } finally {
        readsWaiting -= 1;
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
