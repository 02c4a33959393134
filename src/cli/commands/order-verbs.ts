/** `strata ping`, `strata exec`, `strata sync`, `strata logs`: fleet orders sent through the server to the agents a target picks. */
import type { Command } from 'commander';
import { parseDuration } from '../../protocol/duration.ts';
import { ORDER_TIMEOUT, type OrderRequest } from '../../protocol/order-api.ts';
import type { OrderArgs } from '../../protocol/orders.ts';
import { UsageError, type CliContext } from '../context.ts';
import { streamOrder } from './order-stream.ts';
import { examples, remoteCommand, withApi } from './shared.ts';
import { targetFrom, targetOptions, type TargetOptions } from './target.ts';

/** Flags every order command has. */
type OrderOptions = TargetOptions & { timeout?: string; batch?: string };

/** Adds the target, --timeout and --batch flags to an order command. */
function orderCommand(command: Command): Command {
  return targetOptions(remoteCommand(command), { all: true })
    .option('--timeout <duration>', 'bound the whole order; hosts without a result by then fail with TIMEOUT (default 30s; logs --follow: until Ctrl-C)')
    .option('--batch <n>', 'at most N hosts at once; as one finishes the next starts');
}

/** The request for `args` from the common flags. */
function orderRequest(options: OrderOptions, args: OrderArgs): OrderRequest {
  const target = targetFrom(options, true)!;
  const follow = args.verb === 'logs' && args.follow;
  let timeoutMs: number | undefined;
  if (options.timeout !== undefined) {
    try {
      timeoutMs = parseDuration(options.timeout);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const max = follow ? ORDER_TIMEOUT.followMaxMs : ORDER_TIMEOUT.maxMs;
    if (timeoutMs < 1 || timeoutMs > max) throw new UsageError(`--timeout must be between 1ms and ${max / 3_600_000}h`);
  }
  let batch: number | undefined;
  if (options.batch !== undefined) {
    batch = Number(options.batch);
    if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) throw new UsageError('--batch must be a whole number from 1 to 10000');
  }
  return { target, args, ...(timeoutMs === undefined ? {} : { timeoutMs }), ...(batch === undefined ? {} : { batch }) };
}

/** Sends an order built from a command's flags and prints its answer. */
async function send(command: Command, context: CliContext, args: OrderArgs, follow = false): Promise<void> {
  const request = orderRequest(command.opts<OrderOptions>(), args);
  await withApi(command, context, (api, globals) => streamOrder(api, context, request, { json: Boolean(globals.json), allLines: args.verb === 'logs', interruptible: follow }));
}

/** Registers `ping`, `exec`, `sync`, `logs` and `restart`. */
export function registerOrderVerbs(program: Command, context: CliContext): void {
  const ping = orderCommand(program.command('ping'))
    .description('ask agents to answer; shows each round trip as the server measured it')
    .action(async () => send(ping, context, { verb: 'ping' }));
  examples(ping, ['strata ping --all', "strata ping --selector 'role=web,region!=eu' --timeout 5s", 'strata ping --hosts web-1,web-2 --json']);

  const exec = orderCommand(program.command('exec'))
    .description("run a command the agents whitelist in their own config, by name; arguments travel as data, never through a shell (target flags go before NAME)")
    .argument('<name>', 'whitelisted command name')
    .argument('[args...]', 'arguments for its placeholders')
    .passThroughOptions()
    .action(async (name: string, args: string[]) => send(exec, context, { verb: 'exec', name, args }));
  examples(exec, ['strata exec --group web restart-nginx', 'strata exec --hosts db-1 --timeout 2m vacuum --full', 'strata exec --all --batch 10 disk-usage -h']);

  const sync = orderCommand(program.command('sync'))
    .description("run an rsync group from the agents' config: sync it, list what would change (--dry-run), or stop a running sync (--kill)")
    .argument('<group>', 'rsync group name in the agent config')
    .option('--dry-run', 'list the changes without making them')
    .option('--kill', 'stop a sync of this group that is running')
    .action(async (group: string, options: { dryRun?: boolean; kill?: boolean }) => {
      if (options.dryRun && options.kill) throw new UsageError('--dry-run and --kill exclude each other');
      await send(sync, context, { verb: 'sync', group, mode: options.dryRun ? 'dry-run' : options.kill ? 'kill' : 'run' });
    });
  examples(sync, ['strata sync --group web www', 'strata sync --all www --dry-run', 'strata sync --hosts web-3 www --kill']);

  const logs = orderCommand(program.command('logs'))
    .description("show the agent's own log (by default), or a configuration's last hook output (--hook); --follow streams new lines as host: line until Ctrl-C")
    .option('--config <configuration>', "the agent's log lines about this configuration")
    .option('--hook <configuration>', 'the last hook output of this configuration')
    .option('--lines <n>', 'how many lines from the end', '100')
    .option('--follow', 'keep streaming new lines until Ctrl-C')
    .action(async (options: { config?: string; hook?: string; lines: string; follow?: boolean }) => {
      if (options.config !== undefined && options.hook !== undefined) throw new UsageError('--config and --hook exclude each other');
      const lines = Number(options.lines);
      if (!Number.isInteger(lines) || lines < 1 || lines > 10_000) throw new UsageError('--lines must be a whole number from 1 to 10000');
      const configuration = options.hook ?? options.config;
      const follow = Boolean(options.follow);
      await send(logs, context, { verb: 'logs', source: options.hook === undefined ? 'agent' : 'hook', ...(configuration === undefined ? {} : { configuration }), lines, follow }, follow);
    });
  const restart = orderCommand(program.command('restart'))
    .description("restart a configuration's service on the agents (graceful stop, then start of the same release)")
    .requiredOption('--name <configuration>', 'the configuration whose service to restart')
    .action(async (options: { name: string }) => send(restart, context, { verb: 'restart', configuration: options.name }));
  examples(restart, ['strata restart --name web --selector role=web', 'strata restart --name web --hosts web-1 --batch 1']);

  examples(logs, ['strata logs --hosts web-1 --lines 50', 'strata logs --group web --hook site', 'strata logs --selector role=web --follow']);
}
