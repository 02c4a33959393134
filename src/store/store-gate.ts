/** What every store backend does around each operation: refuse once closed, and name storage errors. */
import { StrataError } from '../core/errors.ts';

/** The gate one open store passes its operations through. */
export class StoreGate<C> {
  /** Set by the store's `close`. */
  closed = false;
  private readonly ctx: C;
  private readonly mapError: (error: unknown) => unknown;

  /** `mapError` turns a backend's failure into the catalog's (a full disk into INSUFFICIENT_STORAGE, …). */
  constructor(ctx: C, mapError: (error: unknown) => unknown) {
    this.ctx = ctx;
    this.mapError = mapError;
  }

  /** Throws once the store is closed. */
  assertOpen(): void {
    if (this.closed) throw new StrataError('INTERNAL', 'the store is closed');
  }

  /** Runs one operation on the store's context. */
  readonly run = async <T>(work: (ctx: C) => T | Promise<T>): Promise<T> => {
    this.assertOpen();
    try {
      return await work(this.ctx);
    } catch (error) {
      throw this.mapError(error);
    }
  };
}
