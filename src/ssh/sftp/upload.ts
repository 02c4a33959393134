/**
 * The operators' SFTP view, upload-only as in deploy-tools: any file name may be written, and
 * whatever is written is streamed into the blob store through the same archive inspection and
 * size limit as an HTTP upload (`src/core/upload.ts`), named by its sha256 — the hash
 * `addver -hash` then refers to. Nothing can be read, listed, renamed or removed.
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { SFTPWrapper } from 'ssh2';
import { storeUpload, type UploadLimits } from '../../core/upload.ts';
import type { Store } from '../../store/contract.ts';
import type { Logger } from '../../lib/logger.ts';
import { answerRealpath, directoryAttrs, fileAttrs, HandleTable, normalizePath, OPEN, refuseChanges, STATUS } from './common.ts';

/** Bytes buffered between the SFTP channel and the store before writes wait. */
const BUFFER_BYTES = 1024 * 1024;

/** One file being uploaded. */
interface Upload {
  path: string;
  input: PassThrough;
  received: number;
  /** Settles when the store has kept or refused the bytes. */
  result: Promise<{ sha256: string; size: number }>;
  failure: Error | undefined;
}

/** What the upload view needs. */
export interface UploadViewDeps {
  store: Store;
  limits: UploadLimits;
  logger: Logger;
  /** Who uploads, for the log. */
  actor: string;
}

/** Serves the upload-only view on an SFTP session. */
export function serveUploadView(sftp: SFTPWrapper, deps: UploadViewDeps): void {
  const uploads = new HandleTable<Upload>();
  const { limits } = deps;

  const start = (filePath: string): Upload => {
    const input = new PassThrough({ highWaterMark: BUFFER_BYTES });
    const upload: Upload = { path: filePath, input, received: 0, failure: undefined, result: undefined! };
    upload.result = storeUpload(deps.store, input, limits).then(({ info, summary }) => {
      deps.logger.info({ actor: deps.actor, path: filePath, sha256: info.sha256, size: info.size, format: summary.format }, 'ssh upload stored');
      return { sha256: info.sha256, size: info.size };
    });
    upload.result.catch((error: unknown) => {
      upload.failure ??= error as Error;
      deps.logger.info({ actor: deps.actor, path: filePath, reason: upload.failure.message }, 'ssh upload refused');
      input.destroy();
    });
    return upload;
  };

  // A malformed packet ends this session only, never the server.
  sftp.on('error', (error: Error) => deps.logger.debug({ err: error }, 'ssh sftp session error'));
  sftp.on('REALPATH', (reqid: number, requested: string) => answerRealpath(sftp, reqid, requested));
  const stat = (reqid: number, requested: string): void => {
    if (normalizePath(requested) === '/') sftp.attrs(reqid, directoryAttrs());
    else sftp.status(reqid, STATUS.NO_SUCH_FILE);
  };
  sftp.on('STAT', stat);
  sftp.on('LSTAT', stat);

  sftp.on('OPEN', (reqid: number, filename: string, flags: number) => {
    // Go's sftp Create (deployctl, deploy-from-docker) opens read-write; reads on the handle are refused anyway.
    if (!(flags & OPEN.WRITE)) return sftp.status(reqid, STATUS.PERMISSION_DENIED, 'upload only: files can be written, not read');
    const handle = uploads.add(start(normalizePath(filename)));
    if (!handle) return sftp.status(reqid, STATUS.FAILURE, 'too many files open at once');
    sftp.handle(reqid, handle);
  });

  sftp.on('WRITE', async (reqid: number, handle: Buffer, offset: number, data: Buffer) => {
    const upload = uploads.get(handle);
    if (!upload) return sftp.status(reqid, STATUS.FAILURE, 'unknown handle');
    if (upload.failure) return sftp.status(reqid, STATUS.FAILURE, upload.failure.message);
    if (offset !== upload.received) return sftp.status(reqid, STATUS.FAILURE, 'uploads must be written from start to end');
    upload.received += data.length;
    if (upload.received > limits.maxUploadBytes) {
      upload.failure = new Error(`upload is over the limit of ${limits.maxUploadBytes} bytes`);
      upload.input.destroy();
      return sftp.status(reqid, STATUS.FAILURE, upload.failure.message);
    }
    // Answering only once the bytes fit in the buffer makes the client wait: its requests in flight are bounded.
    if (!upload.input.write(data)) await Promise.race([once(upload.input, 'drain'), upload.result.catch(() => undefined)]).catch(() => undefined);
    const failure = upload.failure as Error | undefined;
    if (failure) return sftp.status(reqid, STATUS.FAILURE, failure.message);
    sftp.status(reqid, STATUS.OK);
  });

  sftp.on('FSTAT', (reqid: number, handle: Buffer) => {
    const upload = uploads.get(handle);
    if (!upload) return sftp.status(reqid, STATUS.FAILURE, 'unknown handle');
    sftp.attrs(reqid, fileAttrs(upload.received, new Date(), true));
  });
  // Setting times or modes (`put -p`) is accepted and ignored: blobs have no such attributes.
  sftp.on('FSETSTAT', (reqid: number) => sftp.status(reqid, STATUS.OK));
  sftp.on('SETSTAT', (reqid: number) => sftp.status(reqid, STATUS.OK));

  sftp.on('CLOSE', async (reqid: number, handle: Buffer) => {
    const upload = uploads.take(handle);
    if (!upload) return sftp.status(reqid, STATUS.FAILURE, 'unknown handle');
    if (!upload.failure) upload.input.end();
    try {
      await upload.result;
      sftp.status(reqid, STATUS.OK);
    } catch (error) {
      sftp.status(reqid, STATUS.FAILURE, (upload.failure ?? (error as Error)).message);
    }
  });

  sftp.on('OPENDIR', (reqid: number) => sftp.status(reqid, STATUS.PERMISSION_DENIED, 'upload only: nothing can be listed'));
  refuseChanges(sftp, ['READ', 'READDIR', 'REMOVE', 'RENAME', 'MKDIR', 'RMDIR', 'SYMLINK', 'READLINK'], 'upload only: files can be written, nothing else');

  // The client's EOF ends the session: close the channel as an sftp-server process would by exiting.
  sftp.on('end', () => sftp.end());
  // A session that ends with uploads open keeps none of them.
  sftp.on('close', () => {
    for (const upload of uploads.values()) upload.input.destroy(new Error('session closed during the upload'));
  });
}
