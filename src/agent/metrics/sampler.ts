/**
 * The agent's metrics sampler: every interval (10 s by default, on an unref'd timer, never on a
 * request path) it reads `/proc` with plain file reads, turns counters into rates against the
 * previous reading, and keeps only the latest sample. Listeners hear each new sample (the channel
 * sends its summary). A sample still running when the next is due makes that one skip, so slow
 * reads (a hung NFS mount's statfs) never pile up.
 */
import { readFile, statfs } from 'node:fs/promises';
import os from 'node:os';
import type { Logger } from '../../lib/logger.ts';
import {
  busyPercent, isPartition, parseCpuStat, parseDiskstats, parseLoadavg, parseMeminfo, parseMounts, parseNetDev, parseUptime,
  type CpuStat, type MemInfo,
} from './system-parsers.ts';
import { CLOCK_TICKS_PER_SECOND, parseProcessStat, parseStatusRss, processCpuPercent } from './process-parsers.ts';
import { NO_SERVICES, type ServiceStatsSource } from './service-source.ts';
import { processTree } from './process-tree.ts';

/** The default and the smallest sample interval. */
export const DEFAULT_METRICS_INTERVAL_MS = 10_000;
export const MIN_METRICS_INTERVAL_MS = 1_000;

/** Most mounts, disks, interfaces and services one sample holds. */
export const SAMPLE_LIMITS = { mounts: 64, disks: 64, interfaces: 64, services: 64 } as const;

/** A mount's space, in bytes. */
export interface MountSpace {
  mount: string;
  device: string;
  fstype: string;
  totalBytes: number;
  usedBytes: number;
  availableBytes: number;
}

/** A counter since boot and its rate per second over the last interval. */
export interface Counted {
  total: number;
  rate: number;
}

/** One supervised service's share of the machine. */
export interface ServiceSample {
  configuration: string;
  state: string;
  restarts: number;
  pid?: number;
  /** How many processes the figures cover: the main one and its descendants. */
  processes?: number;
  /** Percent of one core over the last interval. */
  cpuPercent?: number;
  /** CPU seconds the processes now running have used. */
  cpuSeconds?: number;
  /** Resident memory summed over the processes (shared pages count once per process). */
  rssBytes?: number;
}

/** One reading of the machine's vital signs. */
export interface Sample {
  /** When it was taken (ms since the epoch). */
  at: number;
  /** How long the rates and percentages are measured over; 0 on the first sample (CPU since boot, rates 0). */
  intervalMs: number;
  cpu: { totalPercent: number; corePercents: number[] };
  load: [number, number, number];
  memory: MemInfo;
  uptimeSeconds: number;
  mounts: MountSpace[];
  disks: { device: string; read: Counted; write: Counted }[];
  interfaces: { name: string; rx: Counted; tx: Counted }[];
  services: ServiceSample[];
}

/** The files the sampler reads; tests point it at fixtures. */
export interface ProcPaths {
  root: string;
}

/** Reads a small `/proc` file. */
function read(path: string): Promise<string> {
  return readFile(path, 'latin1');
}

/** A counter's rate, treating a counter that went backwards (a wrapped or reset device) as no traffic. */
function rate(before: number | undefined, after: number, elapsedMs: number): number {
  if (before === undefined || elapsedMs <= 0 || after < before) return 0;
  return ((after - before) * 1000) / elapsedMs;
}

/** Samples `/proc` on a timer and keeps the latest sample. */
export class MetricsSampler {
  readonly intervalMs: number;
  private readonly root: string;
  private readonly services: ServiceStatsSource;
  private readonly log: Logger | undefined;
  private readonly listeners = new Set<(sample: Sample) => void>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private latestSample: Sample | undefined;
  private previousCpu: CpuStat | undefined;
  private previousAt = 0;
  private previousDisks = new Map<string, { read: number; write: number }>();
  private previousNet = new Map<string, { rx: number; tx: number }>();
  private previousTicks = new Map<number, number>();

  constructor(options: { intervalMs?: number; services?: ServiceStatsSource; log?: Logger; procRoot?: string } = {}) {
    this.intervalMs = Math.max(MIN_METRICS_INTERVAL_MS, options.intervalMs ?? DEFAULT_METRICS_INTERVAL_MS);
    this.services = options.services ?? NO_SERVICES;
    this.log = options.log;
    this.root = options.procRoot ?? '/proc';
  }

  /** The latest sample, once one was taken. */
  get latest(): Sample | undefined {
    return this.latestSample;
  }

  /** The latest sample that measured an interval (not the first, baseline reading). */
  get latestMeasured(): Sample | undefined {
    return this.latestSample && this.latestSample.intervalMs > 0 ? this.latestSample : undefined;
  }

  /** Calls `listener` after every measured sample until the returned function is called. */
  subscribe(listener: (sample: Sample) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Takes a first reading now, then one every interval. */
  start(): void {
    if (this.timer) return;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer; waits for a sample in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One sample, unless one is still running; failures are logged, never thrown. */
  private tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.sample()
      .then((sample) => {
        this.latestSample = sample;
        // The first reading only sets the baseline (its CPU is since boot, its rates 0): not worth sending.
        if (sample.intervalMs > 0) for (const listener of this.listeners) listener(sample);
      })
      .catch((error: unknown) => this.log?.warn({ err: error }, 'metrics sample failed'))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** Reads everything once and computes rates against the previous reading. */
  async sample(): Promise<Sample> {
    const root = this.root;
    const [statText, loadText, memText, uptimeText, mountsText, diskText, netText] = await Promise.all([
      read(`${root}/stat`), read(`${root}/loadavg`), read(`${root}/meminfo`), read(`${root}/uptime`),
      read(`${root}/self/mounts`), read(`${root}/diskstats`).catch(() => ''), read(`${root}/net/dev`).catch(() => ''),
    ]);
    const at = Date.now();
    const elapsed = this.previousAt === 0 ? 0 : at - this.previousAt;
    const cpu = parseCpuStat(statText);
    const before = this.previousCpu ?? { total: { total: 0, idle: 0 }, cores: [] };
    const sample: Sample = {
      at, intervalMs: elapsed,
      cpu: {
        totalPercent: busyPercent(before.total, cpu.total),
        corePercents: cpu.cores.map((core, i) => busyPercent(before.cores[i] ?? { total: 0, idle: 0 }, core)),
      },
      load: parseLoadavg(loadText), memory: parseMeminfo(memText), uptimeSeconds: parseUptime(uptimeText),
      mounts: await this.mountSpace(mountsText),
      disks: this.diskRates(diskText, elapsed),
      interfaces: this.netRates(netText, elapsed),
      services: await this.serviceSamples(elapsed),
    };
    this.previousCpu = cpu;
    this.previousAt = at;
    return sample;
  }

  private async mountSpace(text: string): Promise<MountSpace[]> {
    const mounts = parseMounts(text, SAMPLE_LIMITS.mounts);
    const spaces = await Promise.all(mounts.map(async (m): Promise<MountSpace | undefined> => {
      try {
        const fs = await statfs(m.mount);
        const total = fs.blocks * fs.bsize;
        if (total === 0) return undefined;
        return { ...m, totalBytes: total, usedBytes: (fs.blocks - fs.bfree) * fs.bsize, availableBytes: fs.bavail * fs.bsize };
      } catch {
        return undefined; // unreadable to this user, or gone since mounts was read
      }
    }));
    return spaces.filter((s): s is MountSpace => s !== undefined);
  }

  private diskRates(text: string, elapsed: number): Sample['disks'] {
    const counters = parseDiskstats(text, SAMPLE_LIMITS.disks);
    const next = new Map<string, { read: number; write: number }>();
    const disks = counters.map((d) => {
      const old = this.previousDisks.get(d.device);
      next.set(d.device, { read: d.readBytes, write: d.writeBytes });
      return { device: d.device, read: { total: d.readBytes, rate: rate(old?.read, d.readBytes, elapsed) }, write: { total: d.writeBytes, rate: rate(old?.write, d.writeBytes, elapsed) } };
    });
    this.previousDisks = next;
    return disks;
  }

  private netRates(text: string, elapsed: number): Sample['interfaces'] {
    const counters = parseNetDev(text, SAMPLE_LIMITS.interfaces);
    const next = new Map<string, { rx: number; tx: number }>();
    const interfaces = counters.map((n) => {
      const old = this.previousNet.get(n.name);
      next.set(n.name, { rx: n.rxBytes, tx: n.txBytes });
      return { name: n.name, rx: { total: n.rxBytes, rate: rate(old?.rx, n.rxBytes, elapsed) }, tx: { total: n.txBytes, rate: rate(old?.tx, n.txBytes, elapsed) } };
    });
    this.previousNet = next;
    return interfaces;
  }

  /** Each service's processes (main and descendants): CPU since the last sample and resident memory. */
  private async serviceSamples(elapsed: number): Promise<ServiceSample[]> {
    let listed: ReturnType<ServiceStatsSource['services']>;
    try {
      listed = this.services.services().slice(0, SAMPLE_LIMITS.services);
    } catch (error) {
      this.log?.warn({ err: error }, 'could not list services for metrics');
      listed = [];
    }
    const next = new Map<number, number>();
    const samples = await Promise.all(listed.map(async (service): Promise<ServiceSample> => {
      const base: ServiceSample = { configuration: service.configuration, state: service.state, restarts: service.restarts };
      if (service.pid === undefined) return base;
      let ticks = 0;
      let rss = 0;
      let processes = 0;
      for (const pid of await processTree(this.root, service.pid)) {
        try {
          const [statText, statusText] = await Promise.all([read(`${this.root}/${pid}/stat`), read(`${this.root}/${pid}/status`)]);
          ticks += parseProcessStat(statText).cpuTicks;
          rss += parseStatusRss(statusText);
          processes += 1;
        } catch {
          if (pid === service.pid) return { ...base, pid }; // exited between the listing and the read
        }
      }
      // Keyed by the main pid: a restarted service starts a new count. A child exiting makes the sum drop, which reads as 0 for that interval.
      next.set(service.pid, ticks);
      const before = this.previousTicks.get(service.pid);
      return {
        ...base, pid: service.pid, processes, cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND, rssBytes: rss,
        cpuPercent: before === undefined ? 0 : processCpuPercent(before, ticks, elapsed),
      };
    }));
    this.previousTicks = next;
    return samples;
  }
}

/** The number of cores, for summaries taken before `/proc/stat` listed any. */
export function coreCount(sample: Sample): number {
  return sample.cpu.corePercents.length || os.availableParallelism();
}

/** Total read and write rates over whole disks (partitions would count the same bytes twice). */
export function diskIoRates(sample: Sample): { read: number; write: number } {
  const names = new Set(sample.disks.map((d) => d.device));
  let readRate = 0;
  let writeRate = 0;
  for (const disk of sample.disks) {
    if (isPartition(disk.device, names)) continue;
    readRate += disk.read.rate;
    writeRate += disk.write.rate;
  }
  return { read: readRate, write: writeRate };
}
