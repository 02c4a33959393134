/** A description of the machine a benchmark ran on, for its report. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** The facts that make benchmark figures comparable (or not). */
export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  kernel: string;
  node: string;
  gzip: string;
  tar: string;
}

/** The first line a tool prints for `--version`, or "unknown". */
function toolVersion(command: string): string {
  try {
    return execFileSync(command, ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

/** Reads the CPU, memory and tool versions of this machine. */
export function describeMachine(): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cpus: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    gzip: toolVersion('gzip'),
    tar: toolVersion('tar'),
  };
}
