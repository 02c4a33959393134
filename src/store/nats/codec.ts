/**
 * Encodings the NATS backend shares: names as subject tokens and KV keys, JSON payloads, the
 * tombstone header, and how JetStream errors map to Strata errors.
 */
import { headers, type MsgHdrs } from '@nats-io/transport-node';
import { StrataError } from '../../core/errors.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A name as one subject token or KV key part: base64url without padding, so any UTF-8 name
 * (dots, wildcards and all) becomes `[A-Za-z0-9_-]+`, valid in both.
 */
export function token(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64url');
}

/** The name a `token` encodes. */
export function untoken(encoded: string): string {
  return Buffer.from(encoded, 'base64url').toString('utf8');
}

/** A value as a JSON payload. */
export function toJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** A JSON payload as a value. */
export function fromJson<T>(data: Uint8Array): T {
  return JSON.parse(decoder.decode(data)) as T;
}

/** The header that marks a ledger message as a deletion (tombstone) rather than a record. */
export const OP_HEADER = 'Strata-Op';

/** Headers for a message: a tombstone, and/or a subject rollup that drops the subject's older messages. */
export function messageHeaders(options: { tombstone?: boolean; rollup?: boolean }): MsgHdrs | undefined {
  if (!options.tombstone && !options.rollup) return undefined;
  const h = headers();
  if (options.tombstone) h.set(OP_HEADER, 'delete');
  if (options.rollup) h.set('Nats-Rollup', 'sub');
  return h;
}

/** True when a stored message is a tombstone. */
export function isTombstone(message: { header?: MsgHdrs | undefined }): boolean {
  return message.header?.get(OP_HEADER) === 'delete';
}

/** The JetStream API error code of an error, if it is one. */
export function apiErrorCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const api = (error as { api_error?: { err_code?: number } }).api_error;
  if (api?.err_code !== undefined) return api.err_code;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** JetStream's "wrong last sequence" (10071): an expected-sequence header did not match. */
export function isWrongLastSequence(error: unknown): boolean {
  return apiErrorCode(error) === 10071 || /wrong last sequence/i.test(errorMessage(error));
}

/** JetStream's "no message found" for a direct or stream message get. */
export function isMessageNotFound(error: unknown): boolean {
  return apiErrorCode(error) === 10037 || /no message found/i.test(errorMessage(error));
}

/** The message of any thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Turns JetStream's "out of storage" and "message too large" into INSUFFICIENT_STORAGE and
 * PAYLOAD_TOO_LARGE; returns any other error unchanged, so callers can `throw storageError(e)`.
 */
export function storageError(error: unknown): unknown {
  if (error instanceof StrataError) return error;
  const message = errorMessage(error);
  const code = apiErrorCode(error);
  if (code === 10023 || code === 10047 || /insufficient (storage )?resources|maximum bytes exceeded|no space left|resource limits exceeded/i.test(message)) {
    return new StrataError('INSUFFICIENT_STORAGE', undefined, { cause: error });
  }
  if (code === 10054 || /max(imum)?[ _]payload|message size exceeds maximum/i.test(message)) {
    return new StrataError('PAYLOAD_TOO_LARGE', `the record is larger than the NATS server's max_payload (${message})`, { cause: error });
  }
  if (isTransient(error, code, message)) {
    return new StrataError('STORE_UNAVAILABLE', `the NATS store is briefly unreachable: ${message}`, { cause: error });
  }
  return error;
}

/**
 * What a leader election, a lost node or a reconnect looks like from the client: nobody answered
 * the request (no responders), no answer in time, the connection closed or draining, or
 * JetStream saying it is temporarily unavailable (10008). The caller's write did not happen.
 */
function isTransient(error: unknown, code: number | undefined, message: string): boolean {
  const name = error instanceof Error ? error.name : '';
  if (code === 10008 || code === 503) return true;
  if (/^(NoRespondersError|TimeoutError|ClosedConnectionError|DrainingConnectionError|RequestError)$/.test(name)) return true;
  return /no responders|timeout|timed out|heartbeats? missed|connection (closed|draining)|jetstream (system )?(is )?(temporarily )?(not )?(un)?available/i.test(message);
}

/** The ISO 8601 UTC time with milliseconds that the contract uses for every timestamp. */
export function nowIso(): string {
  return new Date().toISOString();
}
