/**
 * Reading rsync's output as it streams: the itemized changes of a dry run (vozlt's `status` and
 * `rlist` in one answer) and the `--info=progress2` lines of a real run. Lists are capped so a
 * million-file tree cannot make a result larger than the channel allows; counts stay exact.
 */

/** Entries kept in each list of a dry run's answer. */
export const LIST_LIMIT = 1000;

/** What a dry run would change. */
export interface SyncPlan {
  new: string[];
  changed: string[];
  deleted: string[];
  /** Files and directories that would be created, updated or deleted. */
  files: number;
  /** Bytes of the files that would be sent. */
  bytes: number;
  /** Set when a list was cut at LIST_LIMIT entries. */
  truncated: boolean;
}

/** Splits a byte stream into lines on `\n` or `\r`, keeping a partial line for the next chunk. */
export class LineSplitter {
  #rest = '';

  /** The complete lines in `chunk` (with what was held back before it). */
  push(chunk: Buffer | string): string[] {
    const lines = (this.#rest + String(chunk)).split(/[\r\n]/);
    this.#rest = lines.pop() ?? '';
    return lines.filter((line) => line.length > 0);
  }

  /** The held-back partial line, if any. */
  flush(): string[] {
    const rest = this.#rest;
    this.#rest = '';
    return rest ? [rest] : [];
  }
}

/** Accumulates `--out-format='%i %l %n'` lines into a plan. */
export class PlanBuilder {
  readonly plan: SyncPlan = { new: [], changed: [], deleted: [], files: 0, bytes: 0, truncated: false };

  #add(list: string[], name: string): void {
    if (list.length < LIST_LIMIT) list.push(name);
    else this.plan.truncated = true;
  }

  /** Reads one output line; lines that are not itemized changes are ignored. */
  line(line: string): void {
    const match = /^(\*deleting|[<>ch.*][fdLDS][^ ]{9}) +(\d+) (.+)$/.exec(line);
    if (!match) return;
    const [, item, size, name] = match as unknown as [string, string, string, string];
    if (item === '*deleting') {
      this.plan.files += 1;
      this.#add(this.plan.deleted, name);
      return;
    }
    // A directory whose only change is its time or permissions is noise, not a change to report.
    if (item[1] === 'd' && !item.includes('+')) return;
    this.plan.files += 1;
    if (item[1] === 'f' && (item[0] === '>' || item[0] === '<')) this.plan.bytes += Number(size);
    this.#add(item.slice(2).startsWith('+++') ? this.plan.new : this.plan.changed, name);
  }
}

/** One `--info=progress2` reading. */
export interface SyncProgress {
  bytes: number;
  percent: number;
  rate: string;
  eta: string;
}

/** Parses a progress2 line such as `  1,234,567  45%  1.23MB/s    0:00:12 (xfr#3, to-chk=5/9)`. */
export function parseProgress(line: string): SyncProgress | undefined {
  const match = /^\s*([\d,]+)\s+(\d+)%\s+(\S+)\s+(\d+:\d\d:\d\d)/.exec(line);
  if (!match) return undefined;
  return { bytes: Number(match[1]!.replaceAll(',', '')), percent: Number(match[2]), rate: match[3]!, eta: match[4]! };
}

/** The totals `--stats` prints at the end of a run, from the tail of its output. */
export function parseStats(output: string): { filesTransferred?: number; bytesTransferred?: number } {
  const number = (label: string): number | undefined => {
    const match = new RegExp(`^${label}: ([\\d,]+)`, 'm').exec(output);
    return match ? Number(match[1]!.replaceAll(',', '')) : undefined;
  };
  const filesTransferred = number('Number of regular files transferred');
  const bytesTransferred = number('Total transferred file size');
  return { ...(filesTransferred !== undefined ? { filesTransferred } : {}), ...(bytesTransferred !== undefined ? { bytesTransferred } : {}) };
}
