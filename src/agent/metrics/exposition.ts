/**
 * What the agent's local endpoint serves: the latest sample, the agent process itself and the
 * agent's own state, as Prometheus text (`/metrics`) and as JSON in the shape of Go's expvar page
 * (`/debug/vars`: `cmdline`, `memstats`, then Strata's stats).
 */
import { PrometheusText, type Labels } from './prometheus-text.ts';
import type { Sample } from './sampler.ts';

/** The agent's own state, for the endpoint. */
export interface AgentStats {
  name: string;
  version: string;
  state: string;
  configurations: { configuration: string; phase: string; currentRevision?: number }[];
}

/** Flags whose value is a secret; `cmdline` shows them as `[redacted]`. */
const SECRET_FLAGS = new Set(['--join-token', '--token']);

/** The command line with secret flag values replaced (`--join-token X` and `--join-token=X`). */
export function redactedArgv(argv: readonly string[]): string[] {
  return argv.map((arg, i) => {
    const eq = arg.indexOf('=');
    if (eq > 0 && SECRET_FLAGS.has(arg.slice(0, eq))) return `${arg.slice(0, eq)}=[redacted]`;
    return i > 0 && SECRET_FLAGS.has(argv[i - 1]!) ? '[redacted]' : arg;
  });
}

/** Numbers about the agent process, read when the endpoint is asked. */
function processStats(): { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number; cpuSeconds: number; startSeconds: number } {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    rss: memory.rss, heapTotal: memory.heapTotal, heapUsed: memory.heapUsed, external: memory.external, arrayBuffers: memory.arrayBuffers,
    cpuSeconds: (cpu.user + cpu.system) / 1e6, startSeconds: Math.round(Date.now() / 1000 - process.uptime()),
  };
}

function each<T>(items: readonly T[], labels: (item: T) => Labels, value: (item: T) => number | undefined): [Labels, number][] {
  const samples: [Labels, number][] = [];
  for (const item of items) {
    const v = value(item);
    if (v !== undefined) samples.push([labels(item), v]);
  }
  return samples;
}

/** The Prometheus text of the endpoint. */
export function prometheusText(sample: Sample | undefined, agent: AgentStats): string {
  const out = new PrometheusText();
  const proc = processStats();
  out.family('strata_agent_info', 'gauge', 'Always 1; the labels say which agent and version.', [[{ name: agent.name, version: agent.version }, 1]])
    .family('strata_agent_configuration_phase', 'gauge', '1 for the phase each tracked configuration is in.', agent.configurations.map((c) => [{ configuration: c.configuration, phase: c.phase }, 1] as const))
    .single('process_resident_memory_bytes', 'gauge', 'Resident memory of the agent process.', proc.rss)
    .single('process_cpu_seconds_total', 'counter', 'CPU time the agent process used.', proc.cpuSeconds)
    .single('process_start_time_seconds', 'gauge', 'When the agent process started, in seconds since the epoch.', proc.startSeconds)
    .single('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap in use by the agent.', proc.heapUsed)
    .single('nodejs_heap_size_total_bytes', 'gauge', 'V8 heap reserved by the agent.', proc.heapTotal);
  if (!sample) return out.text();
  out.single('strata_node_sample_timestamp_seconds', 'gauge', 'When the latest sample was taken.', sample.at / 1000)
    .single('strata_node_sample_interval_seconds', 'gauge', 'Interval the rates and percentages of the latest sample cover.', sample.intervalMs / 1000)
    .family('strata_node_cpu_busy_percent', 'gauge', 'Percent of CPU time busy over the last interval, per core and in total.',
      [[{ cpu: 'total' }, sample.cpu.totalPercent], ...sample.cpu.corePercents.map((p, i) => [{ cpu: String(i) }, p] as const)])
    .single('strata_node_load1', 'gauge', '1-minute load average.', sample.load[0])
    .single('strata_node_load5', 'gauge', '5-minute load average.', sample.load[1])
    .single('strata_node_load15', 'gauge', '15-minute load average.', sample.load[2])
    .single('strata_node_memory_total_bytes', 'gauge', 'Physical memory.', sample.memory.totalBytes)
    .single('strata_node_memory_available_bytes', 'gauge', 'Memory available for new work without swapping (MemAvailable).', sample.memory.availableBytes)
    .single('strata_node_swap_total_bytes', 'gauge', 'Swap space.', sample.memory.swapTotalBytes)
    .single('strata_node_swap_free_bytes', 'gauge', 'Unused swap space.', sample.memory.swapFreeBytes)
    .single('strata_node_uptime_seconds', 'gauge', 'Seconds since the machine booted.', sample.uptimeSeconds);
  const mount = (m: Sample['mounts'][number]): Labels => ({ mountpoint: m.mount, device: m.device, fstype: m.fstype });
  out.family('strata_node_filesystem_size_bytes', 'gauge', 'Size of each real filesystem.', each(sample.mounts, mount, (m) => m.totalBytes))
    .family('strata_node_filesystem_used_bytes', 'gauge', 'Space used on each real filesystem.', each(sample.mounts, mount, (m) => m.usedBytes))
    .family('strata_node_filesystem_avail_bytes', 'gauge', 'Space available to unprivileged users on each real filesystem.', each(sample.mounts, mount, (m) => m.availableBytes))
    .family('strata_node_disk_read_bytes_total', 'counter', 'Bytes read from each block device since boot.', each(sample.disks, (d) => ({ device: d.device }), (d) => d.read.total))
    .family('strata_node_disk_written_bytes_total', 'counter', 'Bytes written to each block device since boot.', each(sample.disks, (d) => ({ device: d.device }), (d) => d.write.total))
    .family('strata_node_network_receive_bytes_total', 'counter', 'Bytes received on each interface since boot.', each(sample.interfaces, (n) => ({ interface: n.name }), (n) => n.rx.total))
    .family('strata_node_network_transmit_bytes_total', 'counter', 'Bytes sent on each interface since boot.', each(sample.interfaces, (n) => ({ interface: n.name }), (n) => n.tx.total));
  const service = (s: Sample['services'][number]): Labels => ({ configuration: s.configuration });
  out.family('strata_service_up', 'gauge', '1 for the state each supervised service is in.', sample.services.map((s) => [{ configuration: s.configuration, state: s.state }, 1] as const))
    .family('strata_service_restarts_total', 'counter', 'Restarts of each supervised service.', each(sample.services, service, (s) => s.restarts))
    .family('strata_service_processes', 'gauge', "Processes of each service: its main process and their descendants.", each(sample.services, service, (s) => s.processes))
    .family('strata_service_cpu_seconds_total', 'counter', "CPU time used by each service's running processes.", each(sample.services, service, (s) => s.cpuSeconds))
    .family('strata_service_cpu_percent', 'gauge', "Percent of one core each service's processes used over the last interval.", each(sample.services, service, (s) => s.cpuPercent))
    .family('strata_service_resident_memory_bytes', 'gauge', "Resident memory summed over each service's processes.", each(sample.services, service, (s) => s.rssBytes));
  return out.text();
}

/** The JSON of `/debug/vars`, in the shape of Go's expvar page plus Strata's own stats. */
export function expvarJson(sample: Sample | undefined, agent: AgentStats): string {
  const proc = processStats();
  return `${JSON.stringify({
    cmdline: redactedArgv(process.argv),
    memstats: {
      Sys: proc.rss, HeapSys: proc.heapTotal, HeapAlloc: proc.heapUsed, Alloc: proc.heapUsed,
      External: proc.external, ArrayBuffers: proc.arrayBuffers,
    },
    process: { pid: process.pid, cpuSeconds: proc.cpuSeconds, startTime: new Date(proc.startSeconds * 1000).toISOString() },
    agent,
    sample: sample ?? null,
  }, null, 2)}\n`;
}
