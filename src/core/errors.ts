/**
 * Strata's error class: a stable code from the catalog, a message fit for a user, structured
 * details and an optional cause. Stores, core logic and the server throw it; the server's error
 * handler and the CLI render it.
 */
import { ERROR_CATALOG, type ErrorCode } from '../protocol/error-codes.ts';

/** An error with a stable code from the catalog. */
export class StrataError extends Error {
  override readonly name = 'StrataError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, options?: { details?: Record<string, unknown>; cause?: unknown }) {
    super(message ?? ERROR_CATALOG[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
  }

  /** The HTTP status the catalog gives this code. */
  get status(): number {
    return ERROR_CATALOG[this.code].status;
  }
}

/** True when `error` is a StrataError, optionally with the given code. */
export function isStrataError(error: unknown, code?: ErrorCode): error is StrataError {
  return error instanceof StrataError && (code === undefined || error.code === code);
}
