/**
 * Starts a real `strata server` as a child process on a free loopback port in a temp directory,
 * on either store backend (the embedded SQLite store, or NATS JetStream with a nats-server of its
 * own or a shared one, for replicas), and runs the real CLI against it as child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNatsServer, type NatsDeployment } from './nats-server.ts';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The CLI entry point, as `strata` runs it (with the compile cache). */
export const CLI = path.join(ROOT, 'bin/strata.js');

/** The store backends a server can run on; end-to-end suites run once per backend. */
export type StoreBackend = 'sqlite' | 'nats';
/** Every backend, for suites that loop over them. */
export const STORE_BACKENDS: readonly StoreBackend[] = ['sqlite', 'nats'];

/** How to start a server. */
export interface ServerOptions {
  listen?: string;
  /** The store backend; `sqlite` by default. */
  store?: StoreBackend;
  /** With `store: 'nats'`: the NATS URL to share (another replica's `nats`); a nats-server of its own when absent. */
  nats?: string;
  /** The admin token, for a replica whose data directory has no admin.env (another replica bootstrapped the store). */
  token?: string;
}

/** A running server process and the credentials its first start wrote. */
export interface TestServer {
  url: string;
  /** The backend it runs on, and with NATS the URL it uses. */
  store: StoreBackend;
  nats?: string;
  fingerprint: string;
  token: string;
  dataDir: string;
  process: ChildProcess;
  /**
   * Stops the server. A nats-server it started stops with it, unless `keepStore` (a restart on
   * the same data directory then finds it again).
   */
  stop(signal?: NodeJS.Signals, options?: { keepStore?: boolean }): Promise<number | null>;
  /** Output the server wrote to stderr (its logs), for failure messages. */
  logs(): string;
  /** What the server printed on stdout (its start banner). */
  output(): string;
  /** Environment for CLI calls against this server. */
  env: Record<string, string>;
}

/** nats-servers started for a data directory, kept across a restart with `keepStore`. */
const natsOfDataDir = new Map<string, NatsDeployment>();

/** Starts `strata server` on 127.0.0.1 with a free port and waits until it listens. */
export async function startServer(dataDir: string, extraArgs: string[] = [], options: ServerOptions = {}): Promise<TestServer> {
  const store = options.store ?? 'sqlite';
  let ownNats: NatsDeployment | undefined;
  let nats = options.nats;
  if (store === 'nats' && nats === undefined) {
    ownNats = natsOfDataDir.get(dataDir) ?? (await startNatsServer());
    natsOfDataDir.set(dataDir, ownNats);
    nats = ownNats.servers[0]!;
  }
  const dropNats = async (): Promise<void> => {
    natsOfDataDir.delete(dataDir);
    await ownNats?.stop();
  };
  const backendArgs = store === 'nats' ? ['--store', 'nats', '--nats', nats!] : [];
  const child = spawn(process.execPath, [CLI, 'server', '--data', dataDir, '--listen', options.listen ?? '127.0.0.1:0', '--log-level', 'info', ...backendArgs, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const deadline = Date.now() + 20_000;
  while (!/^CA fingerprint: [0-9a-f]{64}$/m.test(stdout) && !/plain HTTP/.test(stdout)) {
    if (child.exitCode !== null) {
      await dropNats();
      throw new Error(`server exited with ${child.exitCode}: ${stderr}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await dropNats();
      throw new Error(`server did not start within 20s: ${stdout}\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const url = /listening on (\S+)/.exec(stdout)![1]!;
  const fingerprint = /^CA fingerprint: ([0-9a-f]{64})$/m.exec(stdout)?.[1] ?? '';
  const token = options.token ?? /STRATA_TOKEN=(\S+)/.exec(await readFile(path.join(dataDir, 'admin.env'), 'utf8'))![1]!;
  const env = { STRATA_SERVER: url, STRATA_TOKEN: token, ...(fingerprint ? { STRATA_FINGERPRINT: fingerprint } : {}) };
  return {
    url, store, ...(nats ? { nats } : {}), fingerprint, token, dataDir, process: child, env,
    logs: () => stderr,
    output: () => stdout,
    async stop(signal = 'SIGTERM', stopOptions = {}) {
      let code: number | null = child.exitCode;
      if (code === null && child.signalCode === null) {
        child.kill(signal);
        [code] = (await once(child, 'exit')) as [number | null];
      }
      // The nats-server it started goes with it; a shared one belongs to whoever started it.
      if (!stopOptions.keepStore) await dropNats();
      return code;
    },
  };
}

/** One request as the server logged it; `answeredAt` is when it logged the response (ms since the epoch, its own clock). */
export interface LoggedRequest {
  method: string;
  url: string;
  status?: number;
  answeredAt?: number;
}

/** The server's request log (its stderr, `TestServer.logs()`): one entry per request, in arrival order. */
export function requestLog(logs: string): LoggedRequest[] {
  const requests = new Map<string, LoggedRequest>();
  for (const line of logs.split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: { reqId?: string; time?: string; req?: { method: string; url: string }; res?: { statusCode: number } };
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (!entry.reqId) continue;
    if (entry.req) requests.set(entry.reqId, { method: entry.req.method, url: entry.req.url });
    else if (entry.res && requests.has(entry.reqId)) Object.assign(requests.get(entry.reqId)!, { status: entry.res.statusCode, answeredAt: Date.parse(entry.time ?? '') });
  }
  return [...requests.values()];
}

/** What a CLI run printed and how it exited. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI in a child process with only the given environment (plus PATH and HOME). */
export async function runStrata(args: string[], env: Record<string, string> = {}, options: { input?: Buffer | string; cwd?: string } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(options.input);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code: code ?? -1, stdout, stderr };
}
