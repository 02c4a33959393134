/**
 * `CONFDIR/hook.json`: the hook running now — its pid, which is also its process group's id, its
 * start time from /proc, its STATEFILE and the release it works on — written before it starts,
 * again with the pid once it started, and removed when it ends. An agent killed in between leaves
 * the first record, and the next start finds the hook by its STATEFILE, which only that run's
 * environment holds. The hook runs in its own process group, so it outlives an agent killed with
 * SIGKILL; the next start finds the record and stops that group before it runs a hook again,
 * instead of letting two hooks work on the same release, and learns which release a hook may have
 * left half-changed. A release such a hook left that the agent could not remove stays in the
 * record (`discard`) after the hook ends, until a removal succeeds, so the next start tries again.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-file.ts';
import { isReleaseId } from '../releases/layout.ts';
import { groupAlive, groupLeadersWithEnv, processStat, signalGroup, waitGone } from '../service/proc.ts';

interface HookRecord {
  /** Missing while the hook is being started: the agent writes the record before it spawns. */
  pid?: number;
  /** /proc/<pid>/stat field 22, as text. */
  startTime?: string;
  /** The kernel's boot id: a record from before a reboot names no process of ours. */
  bootId: string;
  /** The id of the release the hook works on (NEWROOT's directory name). */
  release: string;
  /**
   * The hook's STATEFILE, a path unique to this run: without a pid (the agent died between the
   * spawn and the record) it finds the hook by its environment instead.
   */
  stateFile?: string;
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

/** One hook run: the release it works on, its STATEFILE, and its pid once it started. */
export interface HookRun {
  release: string;
  stateFile: string;
  pid?: number;
}

/**
 * Records a hook run, with the releases still to be removed (`undiscarded`, see forgetHook):
 * first before the spawn (no pid yet), so that an agent killed at any moment leaves a record, then
 * with the pid; a hook already gone by then is not recorded again.
 */
export async function recordHook(confDir: string, run: HookRun, undiscarded: readonly string[] = []): Promise<void> {
  const started = run.pid === undefined ? {} : { pid: run.pid, startTime: (await processStat(run.pid))?.startTime };
  if (run.pid !== undefined && started.startTime === undefined) return;
  const record: HookRecord = { ...started, bootId: await bootId(), release: run.release, stateFile: run.stateFile, ...(undiscarded.length > 0 ? { discard: [...undiscarded] } : {}) };
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

/** The group leaders of the recorded hook that still run: by its pid, or by its STATEFILE when the record has none. */
async function recordedLeaders(record: Partial<HookRecord>): Promise<number[]> {
  if (record.bootId !== (await bootId())) return [];
  const { pid, startTime } = record;
  if (pid === undefined) {
    const stateFile = record.stateFile;
    return typeof stateFile === 'string' && path.isAbsolute(stateFile) ? groupLeadersWithEnv(`STATEFILE=${stateFile}`) : [];
  }
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 1) return [];
  const leader = await processStat(pid);
  return leader === undefined || leader.state === 'Z' || leader.startTime !== startTime ? [] : [pid];
}

/** Stops the recorded hook's group if its leader still runs: its pid when it did, and whether it may still run (EPERM). */
async function stopRecorded(record: Partial<HookRecord>, graceMs: number): Promise<{ stopped: number | undefined; mayRun: boolean }> {
  const leaders = await recordedLeaders(record);
  if (leaders.length === 0) return { stopped: undefined, mayRun: false };
  try {
    for (const pid of leaders) signalGroup(pid, 'SIGTERM');
    if (!(await waitGone(async () => leaders.every((pid) => !groupAlive(pid)), graceMs))) for (const pid of leaders) signalGroup(pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EPERM') return { stopped: undefined, mayRun: true };
    throw error;
  }
  return { stopped: leaders[0], mayRun: false };
}
