/**
 * One health check of a service: an HTTP GET (healthy on 2xx or 3xx), a TCP connect, or a
 * program from the release (healthy on exit status 0) — each bounded by the check's timeout,
 * and each answering a result with a one-line message, never a throw.
 */
import { connect } from 'node:net';
import { runProcess } from '../run-process.ts';
import type { ResolvedHealth } from './resolve.ts';

/** What one check found. */
export interface HealthResult {
  ok: boolean;
  message: string;
}

/** Output a command check may print that is kept (its tail) for the message. */
const COMMAND_OUTPUT_BYTES = 1024;

/** Runs one check. */
export async function checkHealth(check: ResolvedHealth, context: { cwd: string; env: Record<string, string> }): Promise<HealthResult> {
  switch (check.kind) {
    case 'http':
      return checkHttp(check.url!, check.timeoutMs);
    case 'tcp':
      return checkTcp(check.host!, check.port!, check.timeoutMs);
    case 'command':
      return checkCommand(check.argv!, check.timeoutMs, context);
  }
}

async function checkHttp(url: string, timeoutMs: number): Promise<HealthResult> {
  try {
    const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    const ok = response.status >= 200 && response.status < 400;
    return { ok, message: `GET ${url}: HTTP ${response.status}` };
  } catch (error) {
    const name = (error as Error).name;
    if (name === 'TimeoutError' || name === 'AbortError') return { ok: false, message: `GET ${url}: no answer within ${timeoutMs} ms` };
    const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
    return { ok: false, message: `GET ${url}: ${cause?.code ?? cause?.message ?? (error as Error).message}` };
  }
}

function checkTcp(host: string, port: number, timeoutMs: number): Promise<HealthResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (result: HealthResult): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ ok: false, message: `tcp ${host}:${port}: no connection within ${timeoutMs} ms` }), timeoutMs);
    socket.once('connect', () => done({ ok: true, message: `tcp ${host}:${port}: connected` }));
    socket.once('error', (error: NodeJS.ErrnoException) => done({ ok: false, message: `tcp ${host}:${port}: ${error.code ?? error.message}` }));
  });
}

async function checkCommand(argv: string[], timeoutMs: number, context: { cwd: string; env: Record<string, string> }): Promise<HealthResult> {
  const result = await runProcess({ argv, env: context.env, cwd: context.cwd, timeoutMs, maxOutputBytes: COMMAND_OUTPUT_BYTES, killGraceMs: 500 });
  const name = argv[0]!.split('/').pop();
  if (result.spawnError) return { ok: false, message: `${name}: cannot run (${result.spawnError})` };
  if (result.timedOut) return { ok: false, message: `${name}: no answer within ${timeoutMs} ms` };
  const tail = (result.stdout.trim() || result.stderr.trim()).split('\n').pop()?.slice(0, 200) ?? '';
  const how = result.signal ? `killed by ${result.signal}` : `exit ${result.exitCode}`;
  return { ok: result.exitCode === 0, message: `${name}: ${how}${tail ? `: ${tail}` : ''}` };
}
