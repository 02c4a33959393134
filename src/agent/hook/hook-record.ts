/**
 * `CONFDIR/hook.json`: the hook running now — its pid, which is also its process group's id, its
 * start time from /proc, and the release it works on — written when it starts and removed when it
 * ends. The hook runs in its own process group, so it outlives an agent killed with SIGKILL; the
 * next start finds the record and stops that group before it runs a hook again, instead of
 * letting two hooks work on the same release, and learns which release a hook may have left
 * half-changed.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-file.ts';
import { isReleaseId } from '../releases/layout.ts';
import { groupAlive, processStat, signalGroup, waitGone } from '../service/proc.ts';

interface HookRecord {
  pid: number;
  /** /proc/<pid>/stat field 22, as text. */
  startTime: string;
  /** The kernel's boot id: a record from before a reboot names no process of ours. */
  bootId: string;
  /** The id of the release the hook works on (NEWROOT's directory name). */
  release: string;
}

/** What an earlier agent's record says: the hook stopped now, if it still ran, and its release. */
export interface OrphanHook {
  /** The hook's pid, when it still ran and was stopped. */
  stopped: number | undefined;
  /** The release the hook worked on, when the record names a valid release id. */
  release: string | undefined;
}

function recordPath(confDir: string): string {
  return path.join(confDir, 'hook.json');
}

/** This boot's id, or '' where /proc does not say. */
async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
}

/** Records the hook that just started as `pid`, working on `release`; a hook already gone is not recorded. */
export async function recordHook(confDir: string, pid: number, release: string): Promise<void> {
  const startTime = (await processStat(pid))?.startTime;
  if (startTime === undefined) return;
  await writeFileAtomic(recordPath(confDir), `${JSON.stringify({ pid, startTime, bootId: await bootId(), release } satisfies HookRecord)}\n`);
}

/** Forgets the recorded hook (it ended). */
export async function forgetHook(confDir: string): Promise<void> {
  await rm(recordPath(confDir), { force: true });
}

/**
 * Stops the process group of a hook recorded by an earlier agent that died while it ran: SIGTERM,
 * then SIGKILL after `graceMs`. Only while the hook itself still runs — the same pid, start time
 * and boot — so never a group whose number was handed out again, nor daemons a hook that ended
 * left behind on purpose. A group it may not signal (EPERM) is left alone. Either way the record
 * is forgotten, and its release is returned: that hook may have changed it and never finished.
 */
export async function stopOrphanHook(confDir: string, graceMs: number): Promise<OrphanHook> {
  let record: Partial<HookRecord> = {};
  try {
    record = (JSON.parse(await readFile(recordPath(confDir), 'utf8').catch(() => '{}')) ?? {}) as Partial<HookRecord>;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
  }
  const release = typeof record.release === 'string' && isReleaseId(record.release) ? record.release : undefined;
  try {
    return { stopped: await stopRecorded(record, graceMs), release };
  } finally {
    await forgetHook(confDir);
  }
}

/** Stops the recorded hook's group if its leader still runs; its pid when it did. */
async function stopRecorded(record: Partial<HookRecord>, graceMs: number): Promise<number | undefined> {
  const { pid, startTime } = record;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 1) return undefined;
  const leader = await processStat(pid);
  if (leader === undefined || leader.state === 'Z' || leader.startTime !== startTime || record.bootId !== (await bootId())) return undefined;
  try {
    signalGroup(pid, 'SIGTERM');
    if (!(await waitGone(async () => !groupAlive(pid), graceMs))) signalGroup(pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EPERM') return undefined;
    throw error;
  }
  return pid;
}
