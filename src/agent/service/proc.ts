/**
 * What /proc says about a process: whether it lives and when it started. The start time (field
 * 22 of /proc/<pid>/stat, in clock ticks since boot) tells a service apart from an unrelated
 * process that later got the same pid, so the agent never signals a recycled pid.
 */
import { readFile } from 'node:fs/promises';

/** The state letter and start time of a process, or undefined when it is gone. */
export async function processStat(pid: number): Promise<{ state: string; startTime: string } | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field 22 is fields[19].
  const state = fields[0];
  const startTime = fields[19];
  if (state === undefined || startTime === undefined) return undefined;
  return { state, startTime };
}

/** True when `pid` runs and is the process that started at `startTime` (zombies count as gone). */
export async function isSameProcess(pid: number, startTime: string): Promise<boolean> {
  const stat = await processStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z' && stat.state !== 'X';
}

/** Sends `signal` to a process group; a group already gone is fine. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** True while some process is in the group `pgid` (one this process may not signal counts). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Step of the bounded waits for a process to go away. */
const GONE_POLL_MS = 50;

/** Polls `gone` until true or `ms` passed; true when it went. */
export async function waitGone(gone: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < Math.ceil(ms / GONE_POLL_MS) + 1; i++) {
    if (await gone()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, GONE_POLL_MS));
  }
  return gone();
}
