/**
 * What every command receives: injected output streams and environment (so tests capture them),
 * and the error type for user mistakes, which the CLI prints as one line without a stack.
 */

/** The process surroundings a command may touch. */
export interface CliContext {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  /** Standard input, for commands that read data from it (import-image); default process.stdin. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Sets the process exit status; commands call it instead of process.exit. */
  setExitCode(code: number): void;
}

/** A mistake in how a command was used: printed as one line, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** An error the user can act on (a refusal, a missing thing): printed as one line, exit status 1. */
export class UserError extends Error {
  override readonly name = 'UserError';
  readonly code: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(message: string, options?: { code?: string; details?: Record<string, unknown>; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = options?.code;
    this.details = options?.details;
  }
}

/** Writes a line to a stream. */
export function println(stream: NodeJS.WritableStream, line = ''): void {
  stream.write(`${line}\n`);
}

/** Writes a value as pretty JSON. */
export function printJson(stream: NodeJS.WritableStream, value: unknown): void {
  stream.write(`${JSON.stringify(value, null, 2)}\n`);
}
