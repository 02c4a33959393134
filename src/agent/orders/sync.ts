/**
 * `sync`: an rsync group from the agent's config. `dry-run` lists what would change, `run` syncs
 * and streams progress until it reports its one result (vozlt backgrounded rsync and never said
 * how it ended), `kill` stops a group's run. rsync is always argv: the paths, filters and options
 * come from the config file, never from the order, and reach rsync as separate elements.
 */
import { ORDER_CODES } from '../../protocol/orders.ts';
import type { SyncGroup } from '../agent-config.ts';
import { commandEnvironment } from './exec.ts';
import { runProcess, type ProcessResult } from '../run-process.ts';
import { checkDestination } from './sync-paths.ts';
import { LineSplitter, PlanBuilder, parseProgress, parseStats } from './sync-output.ts';
import type { RunningSync } from './sync-registry.ts';
import { abortReason, remainingMs, type OrderContext, type OrderOutcome } from './types.ts';

/** Arguments of a `sync` order. */
export interface SyncArgs {
  group: string;
  mode: 'dry-run' | 'run' | 'kill';
}

/** Progress messages are sent at most this often (the operator's terminal needs no more). */
const PROGRESS_INTERVAL_MS = 500;
/** How long `kill` waits for the run to end before answering. */
const KILL_WAIT_MS = 10_000;
/** Output tail kept for the result. */
const OUTPUT_BYTES = 16 * 1024;

/** rsync's argv for a group: fixed flags first, the config's options, filters, then `--` and the paths. */
function rsyncArgv(rsync: string, group: SyncGroup, destination: string, flags: string[]): string[] {
  return [
    rsync, '-a', ...flags, ...group.options,
    ...group.include.map((pattern) => `--include=${pattern}`),
    ...group.exclude.map((pattern) => `--exclude=${pattern}`),
    '--', group.source, destination,
  ];
}

/** What every finished rsync reports. */
function processContent(result: ProcessResult): Record<string, unknown> {
  return { exitCode: result.exitCode, signal: result.signal, stderr: result.stderr, truncated: result.truncated };
}

/** The failure outcome of a run that did not exit 0, or undefined when it did. */
function failure(group: string, result: ProcessResult, signal: AbortSignal, killed: boolean): OrderOutcome | undefined {
  const content = processContent(result);
  if (result.spawnError) return { ok: false, code: ORDER_CODES.SPAWN_FAILED, message: `sync ${group}: ${result.stderr}`, content };
  if (killed) return { ok: false, code: 'KILLED', message: `sync ${group} was stopped by a kill order`, content };
  if (result.aborted || result.timedOut) {
    const reason = result.timedOut ? 'deadline' : abortReason(signal);
    return { ok: false, code: reason === 'deadline' ? ORDER_CODES.TIMEOUT : 'CANCELLED', message: `sync ${group} was stopped (${reason})`, content };
  }
  if (result.exitCode !== 0) {
    const how = result.exitCode === null ? `was killed by ${result.signal}` : `rsync exited with status ${result.exitCode}`;
    return { ok: false, code: result.exitCode ?? result.signal ?? 'KILLED', message: `sync ${group}: ${how}`, content };
  }
  return undefined;
}

/** Lists what a run would change, without changing anything. */
async function dryRun(group: SyncGroup, destination: string, context: OrderContext): Promise<OrderOutcome> {
  const builder = new PlanBuilder();
  const lines = new LineSplitter();
  const result = await runProcess({
    argv: rsyncArgv(context.config.sync.rsync, group, destination, ['--dry-run', '--itemize-changes', '--out-format=%i %l %n']),
    env: commandEnvironment(context.agentEnv), cwd: '/', timeoutMs: remainingMs(context.deadline) + 5000,
    maxOutputBytes: OUTPUT_BYTES, signal: context.signal,
    onStdout: (chunk) => lines.push(chunk).forEach((line) => builder.line(line)),
  });
  lines.flush().forEach((line) => builder.line(line));
  const failed = failure(group.name, result, context.signal, false);
  if (failed) return failed;
  const { plan } = builder;
  return { ok: true, code: ORDER_CODES.OK, message: `sync ${group.name}: ${plan.files} change(s), ${plan.bytes} bytes to send`, content: { ...plan, exitCode: 0 } };
}

/** Syncs the group, sending throttled progress, and reports how it ended. */
async function run(group: SyncGroup, destination: string, context: OrderContext): Promise<OrderOutcome> {
  const controller = new AbortController();
  let finished!: () => void;
  const running: RunningSync = { orderId: context.orderId, startedAt: Date.now(), controller, done: new Promise<void>((resolve) => (finished = resolve)) };
  const holder = context.syncs.get(group.name);
  if (!context.syncs.claim(group.name, running)) {
    return { ok: false, code: ORDER_CODES.ALREADY_RUNNING, message: `sync ${group.name} is already running (order ${holder?.orderId})` };
  }
  try {
    const lines = new LineSplitter();
    let lastSent = 0;
    const result = await runProcess({
      argv: rsyncArgv(context.config.sync.rsync, group, destination, ['--info=progress2', '--no-inc-recursive', '--stats']),
      env: commandEnvironment(context.agentEnv), cwd: '/', timeoutMs: remainingMs(context.deadline) + 5000,
      maxOutputBytes: OUTPUT_BYTES, signal: AbortSignal.any([context.signal, controller.signal]),
      onStdout: (chunk) => {
        const readings = lines.push(chunk).map(parseProgress).filter((p) => p !== undefined);
        const latest = readings.at(-1);
        if (!latest || Date.now() - lastSent < PROGRESS_INTERVAL_MS) return;
        lastSent = Date.now();
        context.progress({ group: group.name, ...latest });
      },
    });
    const failed = failure(group.name, result, context.signal, controller.signal.aborted);
    if (failed) return failed;
    const stats = parseStats(result.stdout);
    return { ok: true, code: ORDER_CODES.OK, message: `sync ${group.name} done`, content: { ...processContent(result), ...stats } };
  } finally {
    context.syncs.release(group.name, running);
    finished();
  }
}

/** Stops the group's run: SIGTERM to its process group, SIGKILL after a grace period. */
async function kill(group: SyncGroup, context: OrderContext): Promise<OrderOutcome> {
  const running = context.syncs.get(group.name);
  if (!running) return { ok: false, code: ORDER_CODES.NOT_RUNNING, message: `sync ${group.name} is not running` };
  running.controller.abort('killed');
  const timer = new Promise<'waiting'>((resolve) => setTimeout(resolve, KILL_WAIT_MS, 'waiting').unref());
  const outcome = await Promise.race([running.done.then(() => 'stopped' as const), timer]);
  const content = { orderId: running.orderId, ranMs: Date.now() - running.startedAt };
  if (outcome === 'waiting') return { ok: false, code: ORDER_CODES.TIMEOUT, message: `sync ${group.name} did not stop within ${KILL_WAIT_MS / 1000}s`, content };
  return { ok: true, code: ORDER_CODES.OK, message: `sync ${group.name} stopped (order ${running.orderId})`, content };
}

/** Runs a `sync` order. */
export async function syncOrder(args: SyncArgs, context: OrderContext): Promise<OrderOutcome> {
  const group = context.config.sync.groups.get(args.group);
  if (!group) return { ok: false, code: ORDER_CODES.UNKNOWN_GROUP, message: `sync group ${JSON.stringify(args.group)} is not in this agent's config` };
  if (args.mode === 'kill') return kill(group, context);
  const checked = await checkDestination(group.destination, context.config.sync.allowedDestinations);
  if ('problem' in checked) return { ok: false, code: ORDER_CODES.PATH_NOT_ALLOWED, message: `sync ${group.name}: ${checked.problem}` };
  // rsync gets the resolved path, so a symlink swapped in after the check cannot redirect it; a
  // trailing slash is kept because it changes what rsync does with the source directory.
  const destination = checked.resolved + (group.destination.endsWith('/') && checked.resolved !== '/' ? '/' : '');
  context.log.info({ orderId: context.orderId, group: group.name, mode: args.mode, destination }, 'sync order');
  return args.mode === 'dry-run' ? dryRun(group, destination, context) : run(group, destination, context);
}
