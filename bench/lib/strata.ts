/**
 * Driving a real Strata server, its CLI and its agents from a benchmark: CLI calls as child
 * processes, read-only API calls from this process (cheap enough to poll every 100 ms), agent
 * processes with optional node flags, and a census of an unpacked tree.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { CLI, ROOT, type TestServer } from '../../test/helpers/strata-server.ts';
import { running, runTimed, type TimedRun } from './proc.ts';
import { INGEST_TREE, type TreeSpec } from './tree.ts';
import type { ConfigurationStatusView } from '../../src/cli/commands/fleet-views.ts';

/** The environment of a CLI call against `server`: only PATH, HOME and the server's credentials. */
export function cliEnv(server: TestServer): Record<string, string> {
  return { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...server.env };
}

/** Runs `strata ARGS --json` against `server`, timed; throws with the server's log tail on failure. */
export async function strataJson<T>(server: TestServer, args: string[]): Promise<{ result: T; run: TimedRun }> {
  const run = await runTimed(process.execPath, [CLI, ...args, '--json'], { cwd: ROOT, env: cliEnv(server) });
  if (run.code !== 0) throw new Error(`strata ${args.join(' ')} failed with ${run.code ?? run.signal}: ${run.stderr}\nserver log tail:\n${server.logs().slice(-3000)}`);
  return { result: JSON.parse(run.stdout) as T, run };
}

/** The server's CA, as curl's `--cacert` and this process's API calls trust it. */
export function caFile(server: TestServer): string {
  return path.join(server.dataDir, 'tls', 'ca.crt');
}

/** GET a JSON document from the API with the admin token, trusting only the server's CA; 10 s timeout. */
export function apiGet<T>(server: TestServer, urlPath: string): Promise<T> {
  const ca = readFileSync(caFile(server), 'utf8');
  return new Promise((resolve, reject) => {
    const request = https.get(new URL(urlPath, server.url), { ca, headers: { authorization: `Bearer ${server.token}` }, timeout: 10_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        if (response.statusCode !== 200) reject(new Error(`GET ${urlPath}: HTTP ${response.statusCode}: ${body.slice(0, 500)}`));
        else resolve(JSON.parse(body) as T);
      });
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${urlPath}: timed out`)));
    request.on('error', reject);
  });
}

/** The rollout status of a configuration, as GET /v1/configurations/{name}/status answers it. */
export type RolloutStatus = ConfigurationStatusView;

/** Files, bytes, directories and symlinks of a tree (symlinks are not followed). */
export interface TreeCensus {
  files: number;
  bytes: number;
  directories: number;
  symlinks: number;
}

/** Counts what is under `root` (root itself not counted); follows `root` when it is a symlink, nothing below. */
export async function census(root: string): Promise<TreeCensus> {
  const result: TreeCensus = { files: 0, bytes: 0, directories: 0, symlinks: 0 };
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > 64) throw new Error(`${dir}: deeper than 64 levels`);
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const child = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        result.directories += 1;
        await walk(child, depth + 1);
      } else if (entry.isSymbolicLink()) {
        result.symlinks += 1;
      } else if (entry.isFile()) {
        result.files += 1;
        result.bytes += (await lstat(child)).size;
      }
    }
  };
  await walk(root, 0);
  return result;
}

/** The argv of a `strata agent` process: node flags first, then the CLI and its arguments. */
export function agentArgv(nodeFlags: string[], args: string[]): string[] {
  return [...nodeFlags, CLI, 'agent', ...args];
}

/** A background agent process with a bounded tail of its output. */
export interface AgentProcess {
  name: string;
  dir: string;
  child: ChildProcess;
  tail(): string;
}

/** Starts `strata agent` in daemon mode (not --once); its output is kept to the last 8 KiB. */
export function spawnAgent(options: { name: string; dir: string; nodeFlags?: string[]; args: string[]; env?: Record<string, string> }): AgentProcess {
  const child = spawn(process.execPath, agentArgv(options.nodeFlags ?? [], ['--dir', options.dir, ...options.args]), {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...options.env },
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  const keep = (chunk: string): void => {
    output += chunk;
    if (output.length > 16_384) output = output.slice(-8192);
  };
  child.stdout!.setEncoding('utf8').on('data', keep);
  child.stderr!.setEncoding('utf8').on('data', keep);
  return { name: options.name, dir: options.dir, child, tail: () => output.slice(-8192) };
}

/** Stops processes: SIGTERM to all, then SIGKILL to any still there after `graceMs`. */
export async function stopAll(children: ChildProcess[], graceMs = 10_000): Promise<{ killed: number }> {
  const alive = children.filter((child) => child.exitCode === null && child.signalCode === null);
  const exits = alive.map((child) => once(child, 'exit').catch(() => undefined));
  for (const child of alive) child.kill('SIGTERM');
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
  let killed = 0;
  if ((await Promise.race([Promise.all(exits), timer])) === 'timeout') {
    for (const child of alive) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        killed += 1;
      }
    }
    await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  }
  return { killed };
}

/** Polls `check` every `intervalMs` until it returns a value, or throws after `timeoutMs`. */
export async function pollUntil<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** MemAvailable from /proc/meminfo, bytes. */
export function availableMemory(): number {
  return Number(/^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
}

/** The ingest benchmark's tree spec scaled to `totalBytes`, in the same proportions (as bench/ingest does). */
export function scaledIngestTree(totalBytes: number): TreeSpec {
  const scale = totalBytes / INGEST_TREE.totalBytes;
  return { ...INGEST_TREE, totalBytes, smallFiles: Math.round(INGEST_TREE.smallFiles * scale), largeFiles: Math.max(1, Math.round(INGEST_TREE.largeFiles * scale)) };
}
