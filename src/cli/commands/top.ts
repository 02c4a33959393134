/**
 * `strata top`: a live table of the fleet's vital signs — CPU, load, memory, disk, network, and
 * each configuration's phase — from the summaries agents send every sample interval. On a
 * terminal it redraws in place every `--interval` until interrupted; `--once`, `--json` or output
 * that is not a terminal print one table and exit.
 */
import type { Command } from 'commander';
import { parseDuration } from '../../protocol/duration.ts';
import { parseSelector } from '../../protocol/selector.ts';
import type { FleetTop, TopRow } from '../../protocol/metrics.ts';
import { printJson, UsageError, type CliContext } from '../context.ts';
import { table } from '../table.ts';
import { labelsText } from './fleet-views.ts';
import { loadText, percentText, rateText, usedFraction, usedText } from './metrics-format.ts';
import { examples, remoteCommand, withApi } from './shared.ts';

/** What `--sort` accepts. */
export const TOP_SORTS = ['cpu', 'mem', 'disk', 'load', 'name'] as const;
type Sort = (typeof TOP_SORTS)[number];

/** Most redraws one live `strata top` does (a day at the default 2 s) before it exits. */
const MAX_REDRAWS = 43_200;

/** The value a row sorts by, highest first; agents without metrics sort last. */
function sortKey(row: TopRow, sort: Exclude<Sort, 'name'>): number {
  const m = row.metrics;
  if (!m) return -1;
  if (sort === 'cpu') return m.cpu;
  if (sort === 'mem') return usedFraction(m.mem);
  if (sort === 'load') return m.load[0];
  return Math.max(usedFraction(m.disk.fullest), usedFraction(m.disk.root));
}

/** Sorts rows: by name ascending, or by a metric descending (ties by name). */
export function sortRows(rows: readonly TopRow[], sort: Sort): TopRow[] {
  return [...rows].sort((a, b) => {
    if (sort === 'name') return a.name.localeCompare(b.name);
    return sortKey(b, sort) - sortKey(a, sort) || a.name.localeCompare(b.name);
  });
}

/** The table of `strata top`. */
export function topTable(top: FleetTop, sort: Sort): string {
  const rows = sortRows(top.agents, sort).map((row) => {
    const m = row.metrics;
    const configs = row.configurations.map((c) => `${c.configuration} ${c.phase}`).join(', ') || '-';
    if (!m) return [row.name, row.online ? 'yes' : 'no', '-', '-', '-', '-', '-', configs, labelsText(row.labels)];
    const disk = m.disk.fullest ? `${usedText(m.disk.fullest)} ${m.disk.fullest.mount}` : '-';
    return [row.name, row.online ? 'yes' : 'no', percentText(m.cpu), loadText(m.load), usedText(m.mem), disk, `${rateText(m.net.rx)} / ${rateText(m.net.tx)}`, configs, labelsText(row.labels)];
  });
  return table(['NAME', 'ONLINE', 'CPU', 'LOAD', 'MEM', 'DISK (FULLEST)', 'NET RX / TX', 'CONFIGS', 'LABELS'], rows);
}

/** Registers `top`. */
export function registerTop(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('top'))
    .description("a live table of the fleet's vital signs: CPU, load, memory, disk, network, configurations")
    .option('--selector <selector>', 'only agents whose labels match (role=web,region!=eu)')
    .option('--sort <key>', `sort by ${TOP_SORTS.join(', ')} (highest first; name alphabetically)`, 'cpu')
    .option('--interval <duration>', 'how often to redraw', '2s')
    .option('--once', 'print one table and exit')
    .action(async (options: { selector?: string; sort: string; interval: string; once?: boolean }) => {
      if (!(TOP_SORTS as readonly string[]).includes(options.sort)) throw new UsageError(`--sort ${JSON.stringify(options.sort)}: use one of ${TOP_SORTS.join(', ')}`);
      const sort = options.sort as Sort;
      let intervalMs: number;
      try {
        intervalMs = parseDuration(options.interval);
      } catch (error) {
        throw new UsageError(`--interval: ${(error as Error).message}`);
      }
      if (intervalMs < 500) throw new UsageError('--interval must be at least 500ms');
      if (options.selector !== undefined) {
        try {
          parseSelector(options.selector);
        } catch (error) {
          throw new UsageError(`--selector: ${(error as Error).message}`);
        }
      }
      const query = options.selector === undefined ? undefined : { selector: options.selector };
      await withApi(command, context, async (api, globals) => {
        const fetchTop = (): Promise<FleetTop> => api.call<FleetTop>('GET', '/v1/fleet/top', query ? { query } : {});
        const live = !options.once && !globals.json && context.stdout.isTTY === true;
        if (!live) {
          const top = await fetchTop();
          if (globals.json) return printJson(context.stdout, top);
          context.stdout.write(topTable(top, sort));
          return;
        }
        await redraw(context, fetchTop, sort, intervalMs);
      });
    });
  examples(command, ['strata top', "strata top --selector 'role=web' --sort mem", 'strata top --once --json']);
}

/** Redraws the table in place until Ctrl-C (or MAX_REDRAWS); a failed fetch ends it with that error. */
async function redraw(context: CliContext, fetchTop: () => Promise<FleetTop>, sort: Sort, intervalMs: number): Promise<void> {
  const stop = new AbortController();
  const onInterrupt = (): void => stop.abort();
  process.once('SIGINT', onInterrupt);
  try {
    for (let i = 0; i < MAX_REDRAWS && !stop.signal.aborted; i++) {
      const top = await fetchTop();
      const online = top.agents.filter((a) => a.online).length;
      // Home, draw, then clear whatever the previous, longer frame left below.
      context.stdout.write(`\x1b[H${`strata top — ${new Date().toISOString().slice(11, 19)}Z — ${online}/${top.agents.length} online, sorted by ${sort} (Ctrl-C quits)`}\x1b[K\n\n${topTable(top, sort).replace(/\n/g, '\x1b[K\n')}\x1b[J`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        stop.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
    }
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
  context.stdout.write('\n');
}
