/** `strata group set|list|delete`: named targets for orders, a list of agents or a label selector. */
import type { Command } from 'commander';
import type { GroupView } from '../../protocol/order-api.ts';
import { printJson, println, UsageError, type CliContext } from '../context.ts';
import { table } from '../table.ts';
import { examples, remoteCommand, segment, secondsTime, withApi } from './shared.ts';
import { targetFrom } from './target.ts';

/** Registers the `group` command family. */
export function registerGroup(program: Command, context: CliContext): void {
  const group = program.command('group').description('named targets for orders: --group NAME picks its agents');

  const set = remoteCommand(group.command('set'))
    .description('create or replace a group: a fixed list of agents, or a label selector evaluated when an order runs')
    .argument('<name>', 'group name')
    .option('--hosts <names>', 'these agents, comma-separated')
    .option('--selector <selector>', 'agents whose labels match')
    .action(async (name: string, options: { hosts?: string; selector?: string }) => {
      if ((options.hosts === undefined) === (options.selector === undefined)) throw new UsageError('a group is either --hosts a,b or --selector EXPR: give exactly one');
      const target = targetFrom(options, true)!;
      await withApi(set, context, async (api, globals) => {
        const stored = await api.call<GroupView>('PUT', `/v1/groups/${segment(name)}`, { json: target });
        if (globals.json) printJson(context.stdout, stored);
        else println(context.stdout, `group ${stored.name}: ${stored.hosts ? stored.hosts.join(',') : stored.selector}`);
      });
    });
  examples(set, ['strata group set web --hosts web-1,web-2', "strata group set eu-web --selector 'role=web,region=eu'"]);

  const list = remoteCommand(group.command('list'))
    .description('list groups')
    .action(async () => {
      await withApi(list, context, async (api, globals) => {
        const { groups } = await api.call<{ groups: GroupView[] }>('GET', '/v1/groups');
        if (globals.json) return printJson(context.stdout, { groups });
        const rows = groups.map((g) => [g.name, g.hosts ? 'hosts' : 'selector', g.hosts ? g.hosts.join(',') : g.selector || '(every agent)', secondsTime(g.updatedAt), g.updatedBy]);
        context.stdout.write(table(['NAME', 'KIND', 'MEMBERS', 'UPDATED', 'BY'], rows));
      });
    });
  examples(list, ['strata group list', 'strata group list --json']);

  const remove = remoteCommand(group.command('delete'))
    .description('remove a group (its agents are not touched)')
    .argument('<name>', 'group name')
    .action(async (name: string) => {
      await withApi(remove, context, async (api, globals) => {
        await api.call<void>('DELETE', `/v1/groups/${segment(name)}`);
        if (globals.json) printJson(context.stdout, { name, removed: true });
        else println(context.stdout, `removed group ${name}`);
      });
    });
  examples(remove, ['strata group delete web']);
}
