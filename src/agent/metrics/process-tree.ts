/**
 * A service's processes: its main pid and every descendant, found through
 * `/proc/<pid>/task/<tid>/children` (so only the service's own tree is read, never all of
 * `/proc`). Bounded in count, so a fork bomb costs one bounded walk per sample.
 */
import { readdir, readFile } from 'node:fs/promises';

/** Most processes counted per service. */
export const MAX_SERVICE_PROCESSES = 64;

/** Parses a `children` file: pids separated by spaces. */
export function parseChildren(text: string): number[] {
  const pids: number[] = [];
  for (const word of text.split(' ')) {
    const pid = Number.parseInt(word, 10);
    if (pid > 0) pids.push(pid);
  }
  return pids;
}

/** `pid` and its descendants, breadth first, at most `limit`; processes that vanish mid-walk are skipped. */
export async function processTree(procRoot: string, pid: number, limit = MAX_SERVICE_PROCESSES): Promise<number[]> {
  const found = [pid];
  const seen = new Set(found);
  for (let i = 0; i < found.length && found.length < limit; i++) {
    const tasks = await readdir(`${procRoot}/${found[i]}/task`).catch(() => [] as string[]);
    for (const task of tasks) {
      const text = await readFile(`${procRoot}/${found[i]}/task/${task}/children`, 'latin1').catch(() => '');
      for (const child of parseChildren(text)) {
        if (seen.has(child) || found.length >= limit) continue;
        seen.add(child);
        found.push(child);
      }
    }
  }
  return found;
}
