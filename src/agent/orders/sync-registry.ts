/**
 * The sync runs in progress, at most one per group: a second `run` of a busy group is refused
 * (vozlt started a second rsync over the first), and `kill` finds the run to stop here instead
 * of scanning /proc for a tagged command line.
 */

/** One run in progress. */
export interface RunningSync {
  orderId: string;
  startedAt: number;
  /** Aborting it with reason 'killed' stops the rsync process group. */
  controller: AbortController;
  /** Settles when the run's rsync has exited and its result was sent. */
  done: Promise<unknown>;
}

/** The runs in progress, by group name. */
export class SyncRegistry {
  readonly #runs = new Map<string, RunningSync>();

  /** Claims `group` for a run; false when one is already running. */
  claim(group: string, run: RunningSync): boolean {
    if (this.#runs.has(group)) return false;
    this.#runs.set(group, run);
    return true;
  }

  /** Releases `group`, if `run` still holds it. */
  release(group: string, run: RunningSync): void {
    if (this.#runs.get(group) === run) this.#runs.delete(group);
  }

  /** The run of `group`, if any. */
  get(group: string): RunningSync | undefined {
    return this.#runs.get(group);
  }
}
