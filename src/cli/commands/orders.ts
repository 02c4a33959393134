/** `strata orders` and `strata orders show ID`: past fleet orders and their per-host results. */
import type { Command } from 'commander';
import { formatDuration } from '../../protocol/duration.ts';
import type { OrderView } from '../../protocol/order-api.ts';
import { printJson, println, UsageError, type CliContext } from '../context.ts';
import { table } from '../table.ts';
import { contentLines } from './order-stream.ts';
import { examples, remoteCommand, secondsTime, segment, withApi } from './shared.ts';

/** `exec df -h`, `sync www dry-run`, `logs hook site`: an order's verb and arguments in one cell. */
export function verbText(args: Record<string, unknown>): string {
  const parts = [String(args['verb'])];
  if (args['verb'] === 'exec') parts.push(String(args['name']), ...((args['args'] as string[] | undefined) ?? []).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))));
  if (args['verb'] === 'sync') parts.push(String(args['group']), String(args['mode']));
  if (args['verb'] === 'logs') parts.push(String(args['source']), ...(args['configuration'] ? [String(args['configuration'])] : []), ...(args['follow'] ? ['--follow'] : []));
  return parts.join(' ');
}

/** `3/1`, or `running` for an order without an outcome yet. */
function outcomeText(order: OrderView): string {
  return order.summary ? `${order.summary.ok}/${order.summary.failed}` : 'running';
}

/** Registers `orders` and `orders show`. */
export function registerOrders(program: Command, context: CliContext): void {
  const list = remoteCommand(program.command('orders'))
    .description('list past fleet orders, newest first')
    .option('--limit <n>', 'how many orders', '50')
    .action(async (options: { limit: string }) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError('--limit must be a whole number from 1 to 10000');
      await withApi(list, context, async (api, globals) => {
        const { orders } = await api.call<{ orders: OrderView[] }>('GET', '/v1/orders', { query: { limit } });
        if (globals.json) return printJson(context.stdout, { orders });
        const rows = orders.map((o) => [o.id, secondsTime(o.createdAt), o.actor, verbText(o.args), String(o.hosts.length), outcomeText(o)]);
        context.stdout.write(table(['ID', 'TIME', 'WHO', 'VERB', 'HOSTS', 'OK/FAILED'], rows));
      });
    });
  examples(list, ['strata orders', 'strata orders --limit 200 --json']);

  const show = remoteCommand(list.command('show'))
    .description("one order: what was sent, to whom, and each host's result")
    .argument('<id>', 'order id (strata orders)')
    .action(async (id: string) => {
      await withApi(show, context, async (api, globals) => {
        const order = await api.call<OrderView>('GET', `/v1/orders/${segment(id)}`);
        if (globals.json) return printJson(context.stdout, order);
        const facts: [string, string][] = [
          ['id', order.id], ['time', secondsTime(order.createdAt)], ['who', order.actor], ['verb', verbText(order.args)],
          ['target', JSON.stringify(order.target)], ['hosts', String(order.hosts.length)],
          ['finished', order.finishedAt ? secondsTime(order.finishedAt) : 'not yet'], ['ok/failed', outcomeText(order)],
        ];
        for (const [key, value] of facts) println(context.stdout, `${`${key}:`.padEnd(11)}${value}`);
        println(context.stdout);
        const results = order.results ?? {};
        const rows = order.hosts.map((host) => {
          const r = results[host];
          return r ? [host, r.ok ? 'OK' : 'FAIL', String(r.code), formatDuration(r.durationMs), (r.message.split('\n')[0] || contentLines(r.content)[0]) ?? ''] : [host, '-', '-', '-', ''];
        });
        context.stdout.write(table(['HOST', 'OK', 'CODE', 'DURATION', 'MESSAGE'], rows));
      });
    });
  examples(show, ['strata orders show 3f9a1c2b7d4e', 'strata orders show 3f9a1c2b7d4e --json']);
}
