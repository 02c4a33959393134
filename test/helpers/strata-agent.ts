/** Starts real `strata agent` processes against a test server, and waits on what they do. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { CLI, runStrata, type TestServer } from './strata-server.ts';

/** A running agent process. */
export interface TestAgent {
  name: string;
  dir: string;
  process: ChildProcess;
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The join token the server wrote on its first start. */
export async function joinToken(server: TestServer): Promise<string> {
  return (await readFile(path.join(server.dataDir, 'join-token'), 'utf8')).trim();
}

/** Starts `strata agent` in the background with fast polling and retries; `args` come last, so `--poll 10m` there wins. */
export function startAgent(options: { server?: TestServer; dir: string; name?: string; token?: string; args?: string[]; env?: Record<string, string> }): TestAgent {
  const args = [CLI, 'agent', '--dir', options.dir, '--poll', '2s', '--retry-base', '300ms', '--retry-cap', '2s', '--log-level', 'debug'];
  if (options.server) args.push('--server', options.server.url);
  if (options.token) args.push('--join-token', options.token);
  if (options.name) args.push('--name', options.name);
  args.push(...(options.args ?? []));
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...options.env },
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return {
    name: options.name ?? '', dir: options.dir, process: child,
    logs: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await once(child, 'exit');
      return code as number | null;
    },
  };
}

/** The id `current` points at in a configuration directory, if any. */
export async function currentId(confDir: string): Promise<string | undefined> {
  return readlink(path.join(confDir, 'current')).then((target) => path.basename(target), () => undefined);
}

/** Entries of a configuration's `releases/` that are unfinished (or being removed) release trees. */
export async function tempReleases(confDir: string): Promise<string[]> {
  return (await readdir(path.join(confDir, 'releases')).catch(() => [] as string[])).filter((name) => name.startsWith('.tmp-'));
}

/** The agent's JSON log lines so far, parsed; a line not yet whole (or not JSON) is left out. */
export function logEntries(agent: TestAgent): Record<string, unknown>[] {
  const entries: Record<string, unknown>[] = [];
  for (const line of agent.logs().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      entries.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // The last line may still be arriving.
    }
  }
  return entries;
}

/** Polls `check` until it returns a value (not undefined/false) or the time runs out. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** One configuration as the agent reported it, in `strata agents show --json`. */
export interface ReportedConfiguration {
  configuration: string;
  phase: string;
  desiredRevision?: number;
  currentRevision?: number;
  error?: { code: string; message: string };
  hookOutput?: string;
}

/** The agent's record as `strata agents show --json` prints it. */
export async function agentRecord(server: TestServer, name: string): Promise<{ online?: boolean; configurations?: ReportedConfiguration[] } & Record<string, unknown>> {
  const result = await runStrata(['agents', 'show', name, '--json'], server.env);
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout);
}
