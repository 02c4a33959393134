/** The metrics part of `strata agents show NODE --metrics`: the latest values, then a short history. */
import type { AgentMetrics } from '../../protocol/metrics.ts';
import { formatBytes } from '../../protocol/size.ts';
import { println } from '../context.ts';
import { table } from '../table.ts';
import { loadText, percentText, rateText, servicesText, uptimeText, usedText } from './metrics-format.ts';

/** How many of the most recent summaries the history table shows. */
const HISTORY_ROWS = 10;

/** Prints an agent's latest metrics and recent history (or says there are none yet). */
export function printMetrics(out: NodeJS.WritableStream, metrics: AgentMetrics): void {
  println(out);
  const latest = metrics.history.at(-1);
  if (!latest) {
    println(out, `metrics: none yet (${metrics.online ? 'the agent sends a summary every sample interval' : 'the agent is offline'}; this server keeps the last ${metrics.keep} it received)`);
    return;
  }
  const facts: [string, string][] = [
    ['sampled', `${latest.at.slice(0, 19)}Z (over ${Math.round(latest.intervalMs / 100) / 10}s)`],
    ['cpu', `${percentText(latest.cpu)} of ${latest.cores} core${latest.cores === 1 ? '' : 's'}`],
    ['load', loadText(latest.load)],
    ['memory', `${formatBytes(latest.mem.used)} used, ${usedText(latest.mem)}`],
    ['swap', latest.swap.total > 0 ? `${formatBytes(latest.swap.used)} used, ${usedText(latest.swap)}` : 'none'],
    ...(latest.disk.root ? [['disk /', usedText(latest.disk.root)] as [string, string]] : []),
    ...(latest.disk.fullest && latest.disk.fullest.mount !== '/' ? [[`disk ${latest.disk.fullest.mount}`, `${usedText(latest.disk.fullest)} (fullest)`] as [string, string]] : []),
    ['network', `rx ${rateText(latest.net.rx)}, tx ${rateText(latest.net.tx)}`],
    ['disk i/o', `read ${rateText(latest.io.read)}, write ${rateText(latest.io.write)}`],
    ['uptime', uptimeText(latest.uptime)],
    ['services', servicesText(latest.services)],
  ];
  const width = Math.max(...facts.map(([k]) => k.length));
  for (const [key, value] of facts) println(out, `${`${key}:`.padEnd(width + 2)}${value}`);
  println(out);
  const recent = metrics.history.slice(-HISTORY_ROWS);
  println(out, `last ${recent.length} of ${metrics.history.length} samples kept:`);
  out.write(table(['TIME', 'CPU', 'LOAD1', 'MEM', 'NET RX', 'NET TX'], recent.map((m) => [
    `${m.at.slice(11, 19)}Z`, percentText(m.cpu), m.load[0].toFixed(2), usedText(m.mem), rateText(m.net.rx), rateText(m.net.tx),
  ])));
}
