/**
 * Starts a real `strata server` as a child process on a free loopback port in a temp directory,
 * and runs the real CLI against it as child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The CLI entry point, as `strata` runs it (with the compile cache). */
export const CLI = path.join(ROOT, 'bin/strata.js');

/** A running server process and the credentials its first start wrote. */
export interface TestServer {
  url: string;
  fingerprint: string;
  token: string;
  dataDir: string;
  process: ChildProcess;
  /** Output the server wrote to stderr (its logs), for failure messages. */
  logs(): string;
  /** What the server printed on stdout (its start banner). */
  output(): string;
  /** Environment for CLI calls against this server. */
  env: Record<string, string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `strata server` on 127.0.0.1 with a free port and waits until it listens. */
export async function startServer(dataDir: string, extraArgs: string[] = [], options: { listen?: string } = {}): Promise<TestServer> {
  const child = spawn(process.execPath, [CLI, 'server', '--data', dataDir, '--listen', options.listen ?? '127.0.0.1:0', '--log-level', 'info', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const deadline = Date.now() + 20_000;
  while (!/^CA fingerprint: [0-9a-f]{64}$/m.test(stdout) && !/plain HTTP/.test(stdout)) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not start within 20s: ${stdout}\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const url = /listening on (\S+)/.exec(stdout)![1]!;
  const fingerprint = /^CA fingerprint: ([0-9a-f]{64})$/m.exec(stdout)?.[1] ?? '';
  const adminEnv = await readFile(path.join(dataDir, 'admin.env'), 'utf8');
  const token = /STRATA_TOKEN=(\S+)/.exec(adminEnv)![1]!;
  const env = { STRATA_SERVER: url, STRATA_TOKEN: token, ...(fingerprint ? { STRATA_FINGERPRINT: fingerprint } : {}) };
  return {
    url, fingerprint, token, dataDir, process: child, env,
    logs: () => stderr,
    output: () => stdout,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await once(child, 'exit');
      return code as number | null;
    },
  };
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
