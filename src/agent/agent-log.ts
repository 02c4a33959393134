/**
 * The agent's own log file, `DIR/agent.log`, beside stderr: the `logs` order reads it back, so an
 * operator can see why an agent misbehaves without a shell on the machine. It is rotated by size
 * (agent.log → agent.log.1, the older one dropped) so a chatty agent cannot fill the disk.
 */
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { createLogger, type Logger } from '../lib/logger.ts';

/** The log file's name inside the agent directory. */
export const AGENT_LOG = 'agent.log';
/** Rotate once the file would grow past this. */
export const AGENT_LOG_MAX_BYTES = 10 * 1024 * 1024;

/** A size-rotated append-only file, written synchronously like pino's stderr (no lost lines on exit). */
export class RotatingFile {
  readonly file: string;
  readonly #maxBytes: number;
  #fd: number;
  #size: number;

  constructor(file: string, maxBytes = AGENT_LOG_MAX_BYTES) {
    this.file = file;
    this.#maxBytes = maxBytes;
    this.#fd = openSync(file, 'a', 0o600);
    this.#size = fstatSync(this.#fd).size;
  }

  /** Appends one chunk (pino writes whole lines), rotating first if it would not fit. */
  write(chunk: string): boolean {
    const bytes = Buffer.from(chunk);
    if (this.#size > 0 && this.#size + bytes.length > this.#maxBytes) this.#rotate();
    writeSync(this.#fd, bytes);
    this.#size += bytes.length;
    return true;
  }

  #rotate(): void {
    closeSync(this.#fd);
    renameSync(this.file, `${this.file}.1`);
    this.#fd = openSync(this.file, 'a', 0o600);
    this.#size = 0;
  }

  /** Closes the file. */
  close(): void {
    closeSync(this.#fd);
  }
}

/** A logger writing to stderr and to `DIR/agent.log`. */
export function createAgentLogger(options: { dir: string; level: string; maxBytes?: number; stderr?: NodeJS.WritableStream }): Logger {
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const file = new RotatingFile(path.join(options.dir, AGENT_LOG), options.maxBytes);
  // The logger filters by level; the streams take everything it lets through.
  const destination = pino.multistream([
    { level: 'trace', stream: (options.stderr ?? process.stderr) as pino.DestinationStream },
    { level: 'trace', stream: file },
  ]);
  return createLogger({ level: options.level as 'info', name: 'strata-agent', destination: destination as unknown as NodeJS.WritableStream });
}
