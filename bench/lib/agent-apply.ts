/**
 * One agent applying a configuration from scratch: a fresh agent directory, `strata agent --once`
 * timed from spawn to exit, its peak memory, the phases its log reports, and a census of the
 * tree it deployed. Shared by the apply and agent-memory benchmarks.
 */
import path from 'node:path';
import { ROOT } from '../../test/helpers/strata-server.ts';
import { runTimed } from './proc.ts';
import { agentArgv, census, type TreeCensus } from './strata.ts';

/** When the agent's log said what, in seconds after spawn. */
export interface ApplyPhases {
  /** Enrollment done (the join token exchanged for an identity). */
  enrolled?: number;
  /** The blob download started. */
  downloading?: number;
  /** The blobs were verified; unpacking started. */
  unpacking?: number;
  /** The release was unpacked, fsynced, switched to and its state written. */
  deployed?: number;
}

/** One timed `strata agent --once`. */
export interface ApplyRun {
  seconds: number;
  /** VmHWM of the agent process at its last sample (its whole life). */
  peakRss: number;
  /** utime + stime of the agent process (not of children), seconds. */
  cpuSeconds: number;
  phases: ApplyPhases;
  tree: TreeCensus;
}

/** Reads pino's JSON lines: the time of the first line of each phase, relative to `startedAt` (epoch ms). */
export function parsePhases(output: string, configuration: string, startedAt: number): ApplyPhases {
  const phases: ApplyPhases = {};
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    let record: { time?: number | string; msg?: string };
    try {
      record = JSON.parse(line) as { time?: number | string; msg?: string };
    } catch {
      continue;
    }
    // pino writes ISO times (src/lib/logger.ts), millisecond precision.
    const time = typeof record.time === 'string' ? Date.parse(record.time) : record.time;
    if (time === undefined || Number.isNaN(time) || typeof record.msg !== 'string') continue;
    const at = (time - startedAt) / 1000;
    if (record.msg === 'enrolled') phases.enrolled ??= at;
    for (const phase of ['downloading', 'unpacking', 'deployed'] as const) {
      if (record.msg === `configuration ${configuration}: ${phase}`) phases[phase] ??= at;
    }
  }
  return phases;
}

/** Runs a first-start `strata agent --once` in `dir` (which must not exist yet) and checks it deployed. */
export async function applyOnce(options: {
  serverUrl: string;
  joinToken: string;
  dir: string;
  name: string;
  configuration: string;
  nodeFlags?: string[];
  /** Extra environment (PATH and HOME are always passed). */
  env?: Record<string, string>;
}): Promise<ApplyRun> {
  const args = ['--once', '--dir', options.dir, '--server', options.serverUrl, '--join-token', options.joinToken, '--name', options.name, '--track', options.configuration, '--log-level', 'info'];
  let startedAt = 0;
  const run = await runTimed(process.execPath, agentArgv(options.nodeFlags ?? [], args), {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...options.env },
    onStart: () => (startedAt = Date.now()),
  });
  if (run.code !== 0) throw new Error(`strata agent --once (${options.name}) failed with ${run.code ?? run.signal}:\n${(run.stdout + run.stderr).slice(-4000)}`);
  const tree = await census(path.join(options.dir, options.configuration, 'current'));
  return {
    seconds: run.seconds,
    peakRss: Math.max(run.peaks.hwm, run.peaks.sampledRss),
    cpuSeconds: run.peaks.cpu,
    phases: parsePhases(run.stdout + run.stderr, options.configuration, startedAt),
    tree,
  };
}
