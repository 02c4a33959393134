/**
 * `exec`: runs a command the agent's config whitelists, filling its `{N}` placeholders with the
 * order's arguments. Each argument must match its pattern whole and is passed as one argv
 * element, never through a shell, so `;`, backticks and `$(…)` are just characters — and a
 * pattern that allows them is refused anyway unless the operator wrote it to.
 */
import { INHERITED_VARIABLES } from '../hook/hook-environment.ts';
import { ORDER_CODES } from '../../protocol/orders.ts';
import type { ExecEntry } from '../agent-config.ts';
import { runProcess, type ProcessResult } from '../run-process.ts';
import { abortReason, type OrderContext, type OrderOutcome } from './types.ts';

/** Arguments of an `exec` order. */
export interface ExecArgs {
  name: string;
  args: string[];
}

/** The environment commands run with: a short list from the agent's, so its secrets stay put. */
export function commandEnvironment(agentEnv: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED_VARIABLES) {
    const value = agentEnv[name];
    if (value !== undefined) env[name] = value;
  }
  env['PATH'] ??= '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return env;
}

/** Why argument `index` (0-based) may not be used, or undefined when it may. */
export function argumentProblem(entry: ExecEntry, index: number, value: string): string | undefined {
  const which = `argument ${index + 1}`;
  // Refused whatever the pattern says: line breaks and NULs are how vozlt's template was injected.
  if (/[\u0000-\u001f\u007f]/.test(value)) return `${which} contains a control character (newline, NUL, ...)`;
  if (/(^|\/)\.\.(\/|$)/.test(value)) return `${which} contains a ".." path segment`;
  const pattern = entry.patterns[index];
  if (pattern === undefined || !pattern.test(value)) return `${which} ${JSON.stringify(value)} does not match ${String(pattern)}`;
  return undefined;
}

/** The argv with placeholders replaced, or the reason the arguments are refused. */
export function buildArgv(entry: ExecEntry, args: string[]): { argv: string[] } | { problem: string } {
  if (args.length !== entry.patterns.length) return { problem: `exec ${entry.name} takes ${entry.patterns.length} argument(s), got ${args.length}` };
  for (const [index, value] of args.entries()) {
    const problem = argumentProblem(entry, index, value);
    if (problem) return { problem: `exec ${entry.name}: ${problem}` };
  }
  const argv = entry.command.map((element) => {
    const match = /^\{(\d+)\}$/.exec(element);
    return match ? args[Number(match[1]) - 1]! : element;
  });
  return { argv };
}

/** The outcome of a finished command. */
function outcome(entry: ExecEntry, result: ProcessResult, timeoutMs: number, signal: AbortSignal): OrderOutcome {
  const content = {
    exitCode: result.exitCode, signal: result.signal,
    stdout: result.stdout, stderr: result.stderr, truncated: result.truncated,
  };
  if (result.spawnError) return { ok: false, code: ORDER_CODES.SPAWN_FAILED, message: `exec ${entry.name}: ${result.stderr}`, content };
  if (result.timedOut) return { ok: false, code: ORDER_CODES.TIMEOUT, message: `exec ${entry.name} ran past ${timeoutMs} ms and was killed`, content };
  if (result.aborted) {
    const reason = abortReason(signal);
    const code = reason === 'deadline' ? ORDER_CODES.TIMEOUT : 'CANCELLED';
    return { ok: false, code, message: `exec ${entry.name} was stopped (${reason})`, content };
  }
  if (result.exitCode === null) return { ok: false, code: result.signal ?? 'KILLED', message: `exec ${entry.name} was killed by ${result.signal}`, content };
  const ok = result.exitCode === 0;
  return { ok, code: result.exitCode, message: ok ? `exec ${entry.name} succeeded` : `exec ${entry.name} exited with status ${result.exitCode}`, content };
}

/** Runs a whitelisted command. */
export async function execOrder(args: ExecArgs, context: OrderContext): Promise<OrderOutcome> {
  const entry = context.config.exec.get(args.name);
  if (!entry) return { ok: false, code: ORDER_CODES.NOT_WHITELISTED, message: `exec ${JSON.stringify(args.name)} is not in this agent's config` };
  const built = buildArgv(entry, args.args);
  if ('problem' in built) return { ok: false, code: ORDER_CODES.BAD_ARGUMENT, message: built.problem };
  // The order's deadline, when it comes first, arrives as an abort of the signal (code TIMEOUT too).
  const timeoutMs = entry.timeoutMs;
  // Arguments are not logged: an operator may pass a value that must not sit in a log file.
  context.log.info({ orderId: context.orderId, exec: entry.name, argCount: args.args.length }, 'exec order');
  const result = await runProcess({
    argv: built.argv, env: commandEnvironment(context.agentEnv), cwd: '/',
    timeoutMs, maxOutputBytes: entry.maxOutputBytes, signal: context.signal,
  });
  return outcome(entry, result, timeoutMs, context.signal);
}
