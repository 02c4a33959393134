/** `strata assign`, `strata unassign`, `strata assignments`: configurations for the agents a label selector picks. */
import type { Command } from 'commander';
import { canonicalSelector } from '../../protocol/selector.ts';
import { printJson, println, UsageError, type CliContext } from '../context.ts';
import { table } from '../table.ts';
import type { AssignmentView } from './fleet-views.ts';
import { examples, remoteCommand, withApi } from './shared.ts';

/** Checks a selector locally, so a typo is a usage error before anything is sent. */
function checkedSelector(text: string): string {
  try {
    return canonicalSelector(text);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Registers `assign`, `unassign` and `assignments`. */
export function registerAssign(program: Command, context: CliContext): void {
  const assign = remoteCommand(program.command('assign'))
    .description('make every agent whose labels match SELECTOR track a configuration (role=web,region!=eu, tier in (a,b), !canary)')
    .requiredOption('--config <configuration>', 'configuration name')
    .requiredOption('--selector <selector>', 'label selector')
    .action(async (options: { config: string; selector: string }) => {
      const selector = checkedSelector(options.selector);
      await withApi(assign, context, async (api, globals) => {
        const assignment = await api.call<AssignmentView>('PUT', '/v1/assignments', { json: { configuration: options.config, selector } });
        if (globals.json) printJson(context.stdout, assignment);
        else println(context.stdout, `assigned ${assignment.configuration} to agents matching ${assignment.selector}`);
      });
    });
  examples(assign, ["strata assign --config site --selector 'role=web,region!=eu'", "strata assign --config edge --selector 'tier in (pi,nuc)'"]);

  const unassign = remoteCommand(program.command('unassign'))
    .description('remove an assignment; its agents stop tracking the configuration unless something else gives it to them')
    .requiredOption('--config <configuration>', 'configuration name')
    .requiredOption('--selector <selector>', 'label selector, as assigned (any spelling of it)')
    .action(async (options: { config: string; selector: string }) => {
      const selector = checkedSelector(options.selector);
      await withApi(unassign, context, async (api, globals) => {
        await api.call<void>('DELETE', '/v1/assignments', { json: { configuration: options.config, selector } });
        if (globals.json) printJson(context.stdout, { configuration: options.config, selector, removed: true });
        else println(context.stdout, `unassigned ${options.config} from agents matching ${selector}`);
      });
    });
  examples(unassign, ["strata unassign --config site --selector 'role=web,region!=eu'"]);

  const list = remoteCommand(program.command('assignments'))
    .description('list assignments of configurations to label selectors')
    .action(async () => {
      await withApi(list, context, async (api, globals) => {
        const { assignments } = await api.call<{ assignments: AssignmentView[] }>('GET', '/v1/assignments');
        if (globals.json) return printJson(context.stdout, { assignments });
        context.stdout.write(table(['CONFIG', 'SELECTOR', 'CREATED', 'BY'], assignments.map((a) => [a.configuration, a.selector || '(every agent)', `${a.createdAt.slice(0, 19)}Z`, a.createdBy])));
      });
    });
  examples(list, ['strata assignments']);
}
