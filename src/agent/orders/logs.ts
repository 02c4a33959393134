/**
 * `logs`: the last lines of the agent's own log (`DIR/agent.log`, then its rotated predecessor),
 * or the last hook output of a configuration. `follow` streams the agent log's new lines as
 * progress until the order is cancelled or its deadline passes, then answers once.
 */
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { nameProblem } from '../../protocol/names.ts';
import { ORDER_CODES } from '../../protocol/orders.ts';
import { AGENT_LOG } from '../agent-log.ts';
import { readLastHookLog } from './last-hook-log.ts';
import type { OrderContext, OrderOutcome } from './types.ts';

/** Arguments of a `logs` order. */
export interface LogsArgs {
  source: 'agent' | 'hook';
  configuration?: string | undefined;
  lines: number;
  follow: boolean;
}

/** Most bytes read back from the end of the log files, whatever `lines` asks. */
const MAX_TAIL_BYTES = 8 * 1024 * 1024;
/** Longest line sent; longer ones are cut (a log line that big is itself the problem). */
const MAX_LINE_CHARS = 16 * 1024;
/** How often a followed log is checked for new lines, and new lines are sent. */
const FOLLOW_INTERVAL_MS = 250;

const clip = (line: string): string => (line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line);

/** The last `count` lines of `file` (fewer if it is shorter), reading at most `budget` bytes. */
async function tailFile(file: string, count: number, budget: number): Promise<string[]> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  try {
    const size = (await handle.stat()).size;
    const start = Math.max(0, size - budget);
    let end = size;
    let text = '';
    // Read backwards in chunks until enough line breaks are seen.
    while (end > start && text.split('\n').length <= count + 1) {
      const from = Math.max(start, end - 64 * 1024);
      const buffer = Buffer.alloc(end - from);
      await handle.read(buffer, 0, buffer.length, from);
      text = buffer.toString('utf8') + text;
      end = from;
    }
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-count).map(clip);
  } finally {
    await handle.close();
  }
}

/** The last `count` lines of the agent log, across one rotation. */
export async function tailAgentLog(dir: string, count: number): Promise<string[]> {
  const file = path.join(dir, AGENT_LOG);
  const lines = await tailFile(file, count, MAX_TAIL_BYTES);
  if (lines.length >= count) return lines;
  const older = await tailFile(`${file}.1`, count - lines.length, MAX_TAIL_BYTES);
  return [...older, ...lines];
}

/** Sends the agent log's new lines as progress until the signal aborts; resolves with how many. */
async function follow(file: string, context: OrderContext): Promise<number> {
  let position = await stat(file).then((s) => s.size, () => 0);
  let partial = '';
  let sent = 0;
  while (!context.signal.aborted) {
    await delay(FOLLOW_INTERVAL_MS, undefined, { signal: context.signal }).catch(() => undefined);
    const size = await stat(file).then((s) => s.size, () => 0);
    // A smaller file was rotated: the new one is read from its start.
    if (size < position) position = 0;
    if (size === position) continue;
    const handle = await open(file, 'r');
    try {
      const length = Math.min(size - position, MAX_TAIL_BYTES);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, position);
      position += length;
      const lines = (partial + buffer.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      if (lines.length > 0) {
        context.progress({ lines: lines.map(clip) });
        sent += lines.length;
      }
    } finally {
      await handle.close();
    }
  }
  return sent;
}

/** Runs a `logs` order. */
export async function logsOrder(args: LogsArgs, context: OrderContext): Promise<OrderOutcome> {
  if (args.source === 'hook') {
    const configuration = args.configuration ?? '';
    const problem = nameProblem(configuration);
    if (problem) return { ok: false, code: ORDER_CODES.BAD_ARGUMENT, message: `logs from a hook need a configuration name; ${JSON.stringify(configuration)} ${problem}` };
    const text = await readLastHookLog(path.join(context.dir, configuration));
    if (text === undefined) return { ok: true, code: ORDER_CODES.OK, message: `no hook output recorded for ${configuration}`, content: { lines: [] } };
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return { ok: true, code: ORDER_CODES.OK, message: `last hook output of ${configuration}`, content: { lines: lines.slice(-args.lines).map(clip) } };
  }
  const lines = await tailAgentLog(context.dir, args.lines);
  if (!args.follow) return { ok: true, code: ORDER_CODES.OK, message: `last ${lines.length} line(s) of the agent log`, content: { lines } };
  // The tail goes out at once as the first progress, so a follower sees it before any new line.
  context.progress({ lines });
  const followed = await follow(path.join(context.dir, AGENT_LOG), context);
  return { ok: true, code: ORDER_CODES.OK, message: `followed the agent log: ${lines.length + followed} line(s) sent`, content: { lines: [], followed } };
}
