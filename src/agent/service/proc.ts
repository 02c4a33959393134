/**
 * What /proc says about a process: whether it lives and when it started. The start time (field
 * 22 of /proc/<pid>/stat, in clock ticks since boot) tells a service apart from an unrelated
 * process that later got the same pid, so the agent never signals a recycled pid.
 */
import { readdir, readFile } from 'node:fs/promises';

/** The state letter, process group and start time of a process, or undefined when it is gone. */
export async function processStat(pid: number): Promise<{ state: string; pgrp: string; startTime: string } | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field 5 (the process group) is fields[2] and field 22 fields[19].
  const state = fields[0];
  const pgrp = fields[2];
  const startTime = fields[19];
  if (state === undefined || pgrp === undefined || startTime === undefined) return undefined;
  return { state, pgrp, startTime };
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

/**
 * The process-group leaders whose environment holds `entry` (`NAME=value`, matched whole) — how
 * the agent finds a hook it started but died before recording. The environment a process started
 * with is fixed, and only its owner (or root) may read it, so processes of other users are skipped.
 */
export async function groupLeadersWithEnv(entry: string): Promise<number[]> {
  const wanted = Buffer.from(`${entry}\0`);
  const inside = Buffer.from(`\0${entry}\0`);
  const leaders: number[] = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^[1-9]\d*$/.test(name)) continue;
    const environ = await readFile(`/proc/${name}/environ`).catch(() => undefined);
    if (environ === undefined) continue;
    // A whole entry: the first, or one after another's NUL (not the tail of a longer one).
    if (!environ.subarray(0, wanted.length).equals(wanted) && !environ.includes(inside)) continue;
    if ((await processStat(Number(name)))?.pgrp === name) leaders.push(Number(name));
  }
  return leaders;
}
