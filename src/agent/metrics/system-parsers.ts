/**
 * Pure parsers for the system-wide files under `/proc`: CPU times, load, memory, uptime, mounts,
 * disk I/O and network counters. Each takes the file's text and returns plain numbers, so the
 * tests run them on captured samples and on this machine's real `/proc` alike. Linux only.
 */

/** Jiffies a CPU (or all of them) spent in total and idle since boot. */
export interface CpuTimes {
  total: number;
  idle: number;
}

/** `/proc/stat`'s CPU lines: all cores together, then each core in order. */
export interface CpuStat {
  total: CpuTimes;
  cores: CpuTimes[];
}

/** Parses one `cpu…` line: user nice system idle iowait irq softirq steal (guest is already in user). */
function cpuTimes(fields: string[]): CpuTimes {
  let total = 0;
  for (let i = 1; i <= 8 && i < fields.length; i++) total += Number(fields[i]) || 0;
  return { total, idle: (Number(fields[4]) || 0) + (Number(fields[5]) || 0) };
}

/** Parses `/proc/stat`; throws when it has no aggregate `cpu` line. */
export function parseCpuStat(text: string): CpuStat {
  let total: CpuTimes | undefined;
  const cores: CpuTimes[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) continue;
    const fields = line.trim().split(/\s+/);
    if (fields[0] === 'cpu') total = cpuTimes(fields);
    else if (/^cpu\d+$/.test(fields[0]!)) cores.push(cpuTimes(fields));
  }
  if (!total) throw new Error('/proc/stat has no "cpu" line');
  return { total, cores };
}

/** Percent busy between two readings (0 when no time passed), clamped to 0…100. */
export function busyPercent(before: CpuTimes, after: CpuTimes): number {
  const total = after.total - before.total;
  if (total <= 0) return 0;
  const busy = total - (after.idle - before.idle);
  return Math.min(100, Math.max(0, (busy / total) * 100));
}

/** Parses `/proc/loadavg` into the 1, 5 and 15 minute load averages. */
export function parseLoadavg(text: string): [number, number, number] {
  const [one, five, fifteen] = text.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(one) || !Number.isFinite(five) || !Number.isFinite(fifteen)) throw new Error('/proc/loadavg is malformed');
  return [one!, five!, fifteen!];
}

/** Memory and swap, in bytes. */
export interface MemInfo {
  totalBytes: number;
  availableBytes: number;
  swapTotalBytes: number;
  swapFreeBytes: number;
}

/** Parses `/proc/meminfo` (values in kB); kernels before 3.14 lack MemAvailable, so it is estimated. */
export function parseMeminfo(text: string): MemInfo {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(\w+(?:\(\w+\))?):\s+(\d+)/.exec(line);
    if (match) kb.set(match[1]!, Number(match[2]) * 1024);
  }
  const total = kb.get('MemTotal');
  if (total === undefined) throw new Error('/proc/meminfo has no MemTotal');
  const available = kb.get('MemAvailable') ?? (kb.get('MemFree') ?? 0) + (kb.get('Buffers') ?? 0) + (kb.get('Cached') ?? 0);
  return { totalBytes: total, availableBytes: Math.min(total, available), swapTotalBytes: kb.get('SwapTotal') ?? 0, swapFreeBytes: kb.get('SwapFree') ?? 0 };
}

/** Parses `/proc/uptime` into seconds since boot. */
export function parseUptime(text: string): number {
  const seconds = Number(text.trim().split(/\s+/)[0]);
  if (!Number.isFinite(seconds)) throw new Error('/proc/uptime is malformed');
  return seconds;
}

/** A mounted filesystem. */
export interface Mount {
  device: string;
  mount: string;
  fstype: string;
}

/** Filesystems that hold no disk space of their own. */
const PSEUDO_FILESYSTEMS = new Set([
  'proc', 'sysfs', 'devtmpfs', 'devpts', 'tmpfs', 'ramfs', 'cgroup', 'cgroup2', 'securityfs', 'pstore', 'bpf',
  'debugfs', 'tracefs', 'configfs', 'fusectl', 'mqueue', 'hugetlbfs', 'autofs', 'binfmt_misc', 'rpc_pipefs',
  'nsfs', 'efivarfs', 'selinuxfs', 'squashfs', 'overlay', 'fuse.lxcfs', 'fuse.gvfsd-fuse', 'fuse.portal', 'iso9660',
]);

/** Undoes the octal escapes (`\040` for a space) the kernel writes in mount paths. */
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Parses `/proc/self/mounts`, keeping real filesystems only (no pseudo or memory filesystems,
 * read-only images or overlays — except an overlay at `/`, a container's root), one entry per
 * mount point (the last mounted wins), at most `limit`.
 */
export function parseMounts(text: string, limit = 64): Mount[] {
  const byPoint = new Map<string, Mount>();
  for (const line of text.split('\n')) {
    const [device, point, fstype] = line.split(' ');
    if (!device || !point || !fstype) continue;
    const mount = unescapeMountPath(point);
    if (PSEUDO_FILESYSTEMS.has(fstype) && !(fstype === 'overlay' && mount === '/')) continue;
    byPoint.delete(mount);
    byPoint.set(mount, { device: unescapeMountPath(device), mount, fstype });
  }
  return [...byPoint.values()].slice(0, limit);
}

/** Bytes a block device has read and written since boot. */
export interface DiskCounters {
  device: string;
  readBytes: number;
  writeBytes: number;
}

/** Devices whose I/O is memory or counted again on the devices beneath them. */
const VIRTUAL_DISK = /^(loop|ram|zram|dm-|md|sr|fd)\d*/;

/** Parses `/proc/diskstats` (sectors are always 512 bytes there), skipping loop, RAM and mapper devices, at most `limit`. */
export function parseDiskstats(text: string, limit = 64): DiskCounters[] {
  const disks: DiskCounters[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || VIRTUAL_DISK.test(fields[2]!)) continue;
    disks.push({ device: fields[2]!, readBytes: Number(fields[5]) * 512, writeBytes: Number(fields[9]) * 512 });
    if (disks.length >= limit) break;
  }
  return disks;
}

/** True when `name` is a partition of another device in `names` (sda1 of sda, nvme0n1p1 of nvme0n1). */
export function isPartition(name: string, names: ReadonlySet<string>): boolean {
  for (const match of [/^(.+?)p\d+$/.exec(name), /^(.+?)\d+$/.exec(name)]) {
    if (match && names.has(match[1]!)) return true;
  }
  return false;
}

/** Bytes an interface has received and sent since boot. */
export interface NetCounters {
  name: string;
  rxBytes: number;
  txBytes: number;
}

/** Parses `/proc/net/dev`, at most `limit` interfaces. */
export function parseNetDev(text: string, limit = 64): NetCounters[] {
  const interfaces: NetCounters[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.includes('|')) continue;
    const fields = line.slice(colon + 1).trim().split(/\s+/);
    if (fields.length < 9) continue;
    interfaces.push({ name: line.slice(0, colon).trim(), rxBytes: Number(fields[0]), txBytes: Number(fields[8]) });
    if (interfaces.length >= limit) break;
  }
  return interfaces;
}
