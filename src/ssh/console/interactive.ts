/**
 * The interactive console: a `> ` prompt, one command per line, until the client sends EOF
 * (Ctrl-D). Over a pty the server does the line editing (Node's readline: echo, backspace,
 * arrows, history) and turns `\n` into `\r\n`, as a terminal expects; without a pty lines are
 * read as they come and nothing is echoed.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { ServerChannel } from 'ssh2';
import { ConsoleUsageError, MAX_LINE_CHARS, splitCommandLine } from './args.ts';
import type { ConsoleIo } from './commands.ts';

/** The console prompt. */
export const PROMPT = '> ';

/** Lines that may wait while a command runs; more are refused. */
const MAX_QUEUED_LINES = 1000;

/** Lines kept in the pty's history. */
const HISTORY_LINES = 100;

/** Terminal size from the client's pty request. */
export interface PtyInfo {
  cols: number;
  rows: number;
}

/** A writable over the channel that ends lines with `\r\n`, and tells readline the terminal width. */
class TerminalOutput extends Writable {
  columns: number;
  readonly #channel: ServerChannel;

  constructor(channel: ServerChannel, columns: number) {
    super({ decodeStrings: false });
    this.#channel = channel;
    this.columns = columns;
  }

  override _write(chunk: string | Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    const text = chunk.toString().replace(/\r?\n/g, '\r\n');
    if (this.#channel.writable) this.#channel.write(text);
    done();
  }
}

/**
 * Serves the console on a shell channel; resolves at EOF. `execute` runs one command's words
 * with the given output streams and returns its exit status; `onResize` reports the
 * terminal's new width after a window change.
 */
export async function serveInteractive(channel: ServerChannel, pty: PtyInfo | undefined, execute: (args: string[], io: ConsoleIo) => Promise<number>, onResize?: (listener: (cols: number) => void) => void): Promise<void> {
  const terminal = pty ? new TerminalOutput(channel, pty.cols > 0 ? pty.cols : 80) : undefined;
  const out: ConsoleIo['stdout'] = terminal ?? { write: (text: string) => channel.writable && channel.write(text) };
  const err: ConsoleIo['stderr'] = terminal ?? { write: (text: string) => channel.writable && channel.stderr.write(text) };
  const lines = createInterface({
    input: channel,
    ...(terminal ? { output: terminal, terminal: true, historySize: HISTORY_LINES } : { terminal: false }),
    prompt: PROMPT,
    crlfDelay: Infinity,
  });
  // Ctrl-C abandons the line being typed, as in a shell.
  lines.on('SIGINT', () => {
    lines.write('', { ctrl: true, name: 'u' });
    out.write('^C\n');
    lines.prompt();
  });
  onResize?.((cols) => {
    if (terminal && cols > 0) terminal.columns = cols;
  });

  // readline buffers a line until its end: a client that never ends one is cut off instead.
  let pending = 0;
  channel.on('data', (chunk: Buffer) => {
    const end = Math.max(chunk.lastIndexOf(0x0a), chunk.lastIndexOf(0x0d));
    pending = end < 0 ? pending + chunk.length : chunk.length - end - 1;
    if (pending > MAX_LINE_CHARS) {
      err.write(`line longer than ${MAX_LINE_CHARS} characters: closing the session\n`);
      lines.close();
      channel.close();
    }
  });

  // Lines are queued as they arrive (a client may paste or pipe many at once) and run one at a time.
  const queue: string[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  lines.on('line', (line: string) => {
    if (queue.length < MAX_QUEUED_LINES) queue.push(line);
    else err.write(`more than ${MAX_QUEUED_LINES} lines waiting: line ignored\n`);
    wake?.();
  });
  lines.on('close', () => {
    closed = true;
    wake?.();
  });
  // Once the input is closed readline cannot prompt; the lines still queued get a plain one.
  const prompt = (): void => {
    if (terminal && !closed) lines.prompt();
    else out.write(PROMPT);
  };
  prompt();
  for (;;) {
    const line = queue.shift();
    if (line === undefined) {
      if (closed) break;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      continue;
    }
    if (line.trim() !== '') {
      let args: string[] | undefined;
      try {
        args = splitCommandLine(line);
      } catch (error) {
        if (!(error instanceof ConsoleUsageError)) throw error;
        err.write(`${error.message}\n`);
      }
      if (args) await execute(args, { stdout: out, stderr: err });
    }
    prompt();
  }
  if (terminal) out.write('\n');
}
