/**
 * One SSH session channel, by role. Operators get console commands by exec, the interactive
 * console by shell (with or without a pty), and the upload-only SFTP view. Agents
 * (`deploy-agent`) get the read-only SFTP view and nothing else: exec and shell are refused,
 * which OpenSSH reports as `exec request failed on channel 0`.
 */
import type { ServerChannel, Session } from 'ssh2';
import type { Registry } from '../core/registry.ts';
import type { UploadLimits } from '../core/upload.ts';
import type { Logger } from '../lib/logger.ts';
import { ConsoleUsageError, splitCommandLine } from './console/args.ts';
import { runConsoleCommand, type ConsoleIo } from './console/commands.ts';
import { serveInteractive, type PtyInfo } from './console/interactive.ts';
import { serveUploadView } from './sftp/upload.ts';
import { serveAgentView } from './sftp/agent-view.ts';

/** Who is on the other end of a connection. */
export interface SshIdentity {
  role: 'operator' | 'agent';
  /** The SSH user name the client logged in as. */
  username: string;
  /** How the audit log and the server log name the caller. */
  actor: string;
}

/** What a session needs from the server. */
export interface SessionDeps {
  registry: Registry;
  limits: UploadLimits;
  logger: Logger;
}

/**
 * Writes to a channel only while it can still take data (the client may have gone); over a pty,
 * lines end with `\r\n` as a terminal expects.
 */
function safeWriter(stream: { writable: boolean; write(text: string): unknown }, pty: boolean): ConsoleIo['stdout'] {
  return { write: (text: string) => stream.writable && stream.write(pty ? text.replace(/\r?\n/g, '\r\n') : text) };
}

/** Sends the exit status and closes the channel, as an OpenSSH server does after a command. */
function finish(channel: ServerChannel, status: number): void {
  if (!channel.writable) return;
  channel.exit(status);
  channel.end();
}

/** Runs one console command for `identity`, logging it; unexpected errors become an internal-error line. */
async function execute(args: string[], io: ConsoleIo, identity: SshIdentity, deps: SessionDeps): Promise<number> {
  let status: number;
  try {
    status = await runConsoleCommand(args, { registry: deps.registry, actor: identity.actor, maxUploadBytes: deps.limits.maxUploadBytes }, io);
  } catch (error) {
    deps.logger.error({ err: error, actor: identity.actor, command: args[0] }, 'ssh console command failed');
    io.stderr.write('internal error: the server log has details\n');
    status = 1;
  }
  deps.logger.info({ actor: identity.actor, args, status }, 'ssh console command');
  return status;
}

/** Handles one session channel of an authenticated connection. */
export function handleSession(session: Session, identity: SshIdentity, deps: SessionDeps): void {
  session.on('error', (error: Error) => deps.logger.debug({ err: error, actor: identity.actor }, 'ssh session error'));
  if (identity.role === 'agent') {
    session.on('sftp', (accept) => serveAgentView(accept(), { store: deps.registry.store, logger: deps.logger }));
    session.on('exec', (_accept, reject) => reject());
    session.on('shell', (_accept, reject) => reject());
    session.on('pty', (_accept, reject) => reject());
    return;
  }
  let pty: PtyInfo | undefined;
  const resizeListeners: ((cols: number) => void)[] = [];
  session.on('pty', (accept, _reject, info) => {
    pty = { cols: info.cols, rows: info.rows };
    accept?.();
  });
  session.on('window-change', (accept, _reject, info) => {
    for (const listener of resizeListeners) listener(info.cols);
    accept?.();
  });
  session.on('exec', (accept, _reject, info) => {
    const channel = accept();
    channel.on('error', () => undefined);
    const io: ConsoleIo = { stdout: safeWriter(channel, pty !== undefined), stderr: safeWriter(channel.stderr, pty !== undefined), stdin: channel };
    let args: string[];
    try {
      args = splitCommandLine(info.command);
    } catch (error) {
      io.stderr.write(`${error instanceof ConsoleUsageError ? error.message : String(error)}\n`);
      return finish(channel, 1);
    }
    void execute(args, io, identity, deps).then((status) => finish(channel, status));
  });
  session.on('shell', (accept) => {
    const channel = accept();
    channel.on('error', () => undefined);
    serveInteractive(channel, pty, (args, io) => execute(args, io, identity, deps), (listener) => resizeListeners.push(listener))
      .then(() => finish(channel, 0), (error: unknown) => {
        deps.logger.error({ err: error, actor: identity.actor }, 'ssh console failed');
        finish(channel, 1);
      });
  });
  session.on('sftp', (accept) => serveUploadView(accept(), { store: deps.registry.store, limits: deps.limits, logger: deps.logger, actor: identity.actor }));
}
