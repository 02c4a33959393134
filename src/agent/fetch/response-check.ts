/**
 * Judging a blob server's answer before its body is written anywhere: is it the range we asked
 * for, the whole blob, the wrong size, or an error — and is that error worth retrying.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { StrataError } from '../../core/errors.ts';
import { isErrorCode } from '../../protocol/error-codes.ts';

/** Where the body's bytes go: appended at `start`, or the whole blob from zero. */
export type BodyPlan = { kind: 'append'; start: number } | { kind: 'whole' } | { kind: 'wrong-size'; reason: string };

const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** Decides how to use a 200 or 206 answer to a request made with `requestedStart` (0 = no Range). */
export function planBody(status: number, headers: IncomingHttpHeaders, requestedStart: number, size: number): BodyPlan {
  if (status === 200) {
    const length = headers['content-length'];
    // Checked up front so a wrong blob is refused before its bytes are downloaded.
    if (length !== undefined && Number(length) !== size) return { kind: 'wrong-size', reason: `server sent ${length} bytes, expected ${size}` };
    return { kind: 'whole' };
  }
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headers['content-range'] ?? '');
  if (requestedStart === 0 || match === null || Number(match[1]) !== requestedStart) {
    return { kind: 'wrong-size', reason: `server sent range ${headers['content-range'] ?? '(none)'} for a request from byte ${requestedStart}` };
  }
  if (match[3] !== '*' && Number(match[3]) !== size) return { kind: 'wrong-size', reason: `server says the blob has ${match[3]} bytes, expected ${size}` };
  return { kind: 'append', start: requestedStart };
}

/** True for statuses that say "later" rather than "never": timeouts, throttling, server errors. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Reads an error answer (bounded) and turns it into a StrataError with the code the agent should see. */
export async function statusError(status: number, body: Readable, sha256: string): Promise<StrataError> {
  const reply = await readErrorBody(body);
  const details = { sha256, status };
  if (status === 404) return new StrataError('BLOB_NOT_FOUND', `blob ${sha256} is not on the server`, { details });
  if (status === 401) return new StrataError('UNAUTHENTICATED', `the server refused the agent's credentials while fetching blob ${sha256}`, { details });
  if (status === 403) return new StrataError('FORBIDDEN', `the server does not let this agent read blob ${sha256}`, { details });
  const code = isErrorCode(reply?.code) ? reply.code : status >= 500 ? 'INTERNAL' : 'BAD_REQUEST';
  const message = `server answered HTTP ${status} to GET /v1/blobs/${sha256}${reply?.message ? `: ${reply.message}` : ''}`;
  return new StrataError(code, message, { details });
}

/** The `{ code, message }` of an error body, if it has one; never reads more than 64 KiB. */
async function readErrorBody(body: Readable): Promise<{ code?: unknown; message?: string } | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      if (size > MAX_ERROR_BODY_BYTES) break;
      chunks.push(chunk);
    }
  } catch {
    return undefined;
  } finally {
    body.destroy();
  }
  try {
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: unknown; message?: unknown };
    return { code: parsed.code, ...(typeof parsed.message === 'string' ? { message: parsed.message } : {}) };
  } catch {
    return undefined;
  }
}
