/** Turns a full sample into the compact, versioned summary the agent sends on its channel. */
import { MAX_SUMMARY_SERVICES, METRICS_SUMMARY_VERSION, type MetricsSummary } from '../../protocol/metrics.ts';
import { coreCount, diskIoRates, type MountSpace, type Sample } from './sampler.ts';

/** Rounds to `digits` decimals, so the summary stays small. */
function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function disk(space: MountSpace | undefined): { mount: string; used: number; total: number } | undefined {
  return space ? { mount: space.mount, used: space.usedBytes, total: space.totalBytes } : undefined;
}

/** The summary of one sample. */
export function summarize(sample: Sample): MetricsSummary {
  let fullest: MountSpace | undefined;
  for (const space of sample.mounts) {
    if (!fullest || space.usedBytes / space.totalBytes > fullest.usedBytes / fullest.totalBytes) fullest = space;
  }
  const root = disk(sample.mounts.find((m) => m.mount === '/'));
  const top = disk(fullest);
  let rx = 0;
  let tx = 0;
  for (const iface of sample.interfaces) {
    if (iface.name === 'lo') continue;
    rx += iface.rx.rate;
    tx += iface.tx.rate;
  }
  const io = diskIoRates(sample);
  const memory = sample.memory;
  return {
    v: METRICS_SUMMARY_VERSION,
    at: new Date(sample.at).toISOString(),
    intervalMs: Math.max(1, sample.intervalMs),
    cpu: round(sample.cpu.totalPercent), cores: coreCount(sample),
    load: sample.load,
    mem: { used: memory.totalBytes - memory.availableBytes, total: memory.totalBytes },
    swap: { used: memory.swapTotalBytes - memory.swapFreeBytes, total: memory.swapTotalBytes },
    disk: { ...(root ? { root } : {}), ...(top ? { fullest: top } : {}) },
    net: { rx: Math.round(rx), tx: Math.round(tx) },
    io: { read: Math.round(io.read), write: Math.round(io.write) },
    uptime: Math.round(sample.uptimeSeconds),
    services: sample.services.slice(0, MAX_SUMMARY_SERVICES).map((s) => ({
      name: s.configuration, state: s.state, restarts: s.restarts,
      ...(s.cpuPercent === undefined ? {} : { cpu: round(s.cpuPercent) }),
      ...(s.rssBytes === undefined ? {} : { rss: s.rssBytes }),
    })),
  };
}
