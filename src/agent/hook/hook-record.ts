/**
 * `CONFDIR/hook.json`: the hook running now — its pid, which is also its process group's id, and
 * its start time from /proc — written when it starts and removed when it ends. The hook runs in
 * its own process group, so it outlives an agent killed with SIGKILL; the next start finds the
 * record and stops that group before it runs a hook again, instead of letting two hooks work on
 * the same release.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomic } from '../../lib/atomic-file.ts';
import { processStat, signalGroup } from '../service/proc.ts';

interface HookRecord {
  pid: number;
  /** /proc/<pid>/stat field 22, as text. */
  startTime: string;
}

/** How often, and for how long after SIGTERM, to look whether the group is gone. */
const POLL_MS = 50;

function recordPath(confDir: string): string {
  return path.join(confDir, 'hook.json');
}

/** Records the hook that just started as `pid`; a hook already gone is not recorded. */
export async function recordHook(confDir: string, pid: number): Promise<void> {
  const startTime = (await processStat(pid))?.startTime;
  if (startTime === undefined) return;
  await writeFileAtomic(recordPath(confDir), `${JSON.stringify({ pid, startTime } satisfies HookRecord)}\n`);
}

/** Forgets the recorded hook (it ended). */
export async function forgetHook(confDir: string): Promise<void> {
  await rm(recordPath(confDir), { force: true });
}

/** True while some process is in the group `pgid`. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Stops the process group of a hook recorded by an earlier agent that died while it ran: SIGTERM,
 * then SIGKILL after `graceMs`. The group is signalled only when its leader is that very process
 * (same start time) or gone: Linux does not hand out a number still in use as a process group's
 * id, so a group by that id without its leader is the hook's remaining children. Resolves with
 * the pid stopped, or undefined when there was nothing to stop.
 */
export async function stopOrphanHook(confDir: string, graceMs: number): Promise<number | undefined> {
  let record: HookRecord;
  try {
    record = JSON.parse(await readFile(recordPath(confDir), 'utf8')) as HookRecord;
  } catch {
    await forgetHook(confDir);
    return undefined;
  }
  const { pid, startTime } = record;
  const leader = Number.isSafeInteger(pid) && pid > 1 ? await processStat(pid) : undefined;
  const ours = Number.isSafeInteger(pid) && pid > 1 && (leader === undefined || leader.startTime === startTime);
  if (!ours || !groupAlive(pid)) {
    await forgetHook(confDir);
    return undefined;
  }
  signalGroup(pid, 'SIGTERM');
  for (let waited = 0; waited < graceMs && groupAlive(pid); waited += POLL_MS) await sleep(POLL_MS);
  if (groupAlive(pid)) signalGroup(pid, 'SIGKILL');
  await forgetHook(confDir);
  return pid;
}
