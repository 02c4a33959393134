/**
 * `CONFDIR/hook.json`: the hook running now — its pid, which is also its process group's id, its
 * start time from /proc, and the release it works on — written when it starts and removed when it
 * ends. The hook runs in its own process group, so it outlives an agent killed with SIGKILL; the
 * next start finds the record and stops that group before it runs a hook again, instead of
 * letting two hooks work on the same release, and learns which release a hook may have left
 * half-changed. A release such a hook left that the agent could not remove stays in the record
 * (`discard`) after the hook ends, until a removal succeeds, so the next start tries again.
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
  /** Releases earlier hooks left changed whose removal failed: still to be removed, never reused. */
  discard?: string[];
}

/** What an earlier agent's record says: the hook stopped now, if it still ran, and its release. */
export interface OrphanHook {
  /** The hook's pid, when it still ran and was stopped. */
  stopped: number | undefined;
  /** The release the hook worked on, when the record names a valid release id and the hook no longer runs. */
  release: string | undefined;
}

function recordPath(confDir: string): string {
  return path.join(confDir, 'hook.json');
}

/** This boot's id, or '' where /proc does not say. */
async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
}

/**
 * Records the hook that just started as `pid`, working on `release`, with the releases still to
 * be removed (`undiscarded`, see forgetHook); a hook already gone is not recorded.
 */
export async function recordHook(confDir: string, pid: number, release: string, undiscarded: readonly string[] = []): Promise<void> {
  const startTime = (await processStat(pid))?.startTime;
  if (startTime === undefined) return;
  const record: HookRecord = { pid, startTime, bootId: await bootId(), release, ...(undiscarded.length > 0 ? { discard: [...undiscarded] } : {}) };
  await writeFileAtomic(recordPath(confDir), `${JSON.stringify(record)}\n`);
}

/**
 * Forgets the recorded hook (it ended), but not the releases in `undiscarded`: ones a hook left
 * changed whose removal failed, which the next start removes before it deploys anything.
 */
export async function forgetHook(confDir: string, undiscarded: readonly string[] = []): Promise<void> {
  if (undiscarded.length === 0) await rm(recordPath(confDir), { force: true });
  else await writeFileAtomic(recordPath(confDir), `${JSON.stringify({ discard: [...undiscarded] } satisfies Partial<HookRecord>)}\n`);
}

/**
 * Stops the process group of a hook recorded by an earlier agent that died while it ran: SIGTERM,
 * then SIGKILL after `graceMs`. Only while the hook itself still runs — the same pid, start time
 * and boot — so never a group whose number was handed out again, nor daemons a hook that ended
 * left behind on purpose. A group it may not signal (EPERM) is left alone. The release that hook
 * worked on may be half-changed: unless the hook may still be running, `discard` gets it, and the
 * releases earlier removals left, before the record is forgotten, so a crash in between cannot
 * lose track of them. `discard` resolves false when a release is still there: that one stays
 * recorded for the next start.
 */
export async function stopOrphanHook(confDir: string, graceMs: number, discard: (release: string) => Promise<boolean> = async () => true): Promise<OrphanHook> {
  let record: Partial<HookRecord> = {};
  try {
    record = (JSON.parse(await readFile(recordPath(confDir), 'utf8').catch(() => '{}')) ?? {}) as Partial<HookRecord>;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
  }
  let undiscarded = (Array.isArray(record.discard) ? record.discard : []).filter((id): id is string => typeof id === 'string' && isReleaseId(id));
  try {
    const { stopped, mayRun } = await stopRecorded(record, graceMs);
    const release = !mayRun && typeof record.release === 'string' && isReleaseId(record.release) ? record.release : undefined;
    const failed: string[] = [];
    for (const id of new Set([...(release !== undefined ? [release] : []), ...undiscarded])) {
      if (!(await discard(id))) failed.push(id);
    }
    undiscarded = failed;
    return { stopped, release };
  } finally {
    await forgetHook(confDir, undiscarded);
  }
}

/** Stops the recorded hook's group if its leader still runs: its pid when it did, and whether it may still run (EPERM). */
async function stopRecorded(record: Partial<HookRecord>, graceMs: number): Promise<{ stopped: number | undefined; mayRun: boolean }> {
  const { pid, startTime } = record;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 1) return { stopped: undefined, mayRun: false };
  const leader = await processStat(pid);
  if (leader === undefined || leader.state === 'Z' || leader.startTime !== startTime || record.bootId !== (await bootId())) return { stopped: undefined, mayRun: false };
  try {
    signalGroup(pid, 'SIGTERM');
    if (!(await waitGone(async () => !groupAlive(pid), graceMs))) signalGroup(pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EPERM') return { stopped: undefined, mayRun: true };
    throw error;
  }
  return { stopped: pid, mayRun: false };
}
