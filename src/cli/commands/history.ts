/** `strata history` and `strata rollback`: a configuration's revisions, and going back to one. */
import type { Command } from 'commander';
import { printJson, println, UsageError, type CliContext } from '../context.ts';
import { table } from '../table.ts';
import type { ConfigurationView } from './views.ts';
import { examples, remoteCommand, segment, withApi } from './shared.ts';

/** Registers `history`. */
export function registerHistory(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('history'))
    .description("list a configuration's revisions, oldest first")
    .requiredOption('--name <configuration>', 'configuration name')
    .action(async (options: { name: string }) => {
      await withApi(command, context, async (api, globals) => {
        const { revisions } = await api.call<{ revisions: ConfigurationView[] }>('GET', `/v1/configurations/${segment(options.name)}/history`);
        if (globals.json) return printJson(context.stdout, { revisions });
        const rows = revisions.map((r) => [String(r.revision), r.updatedAt.slice(0, 19) + 'Z', r.id.slice(0, 12), r.layers.map((l) => `${l.component}:${l.version}`).join(' '), r.updatedBy, r.note ?? '']);
        context.stdout.write(`${table(['REVISION', 'TIME', 'ID', 'LAYERS', 'BY', 'NOTE'], rows)}`);
      });
    });
  examples(command, ['strata history --name project1', 'strata history --name project1 --json']);
}

/** Registers `rollback`. */
export function registerRollback(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('rollback'))
    .description('make an earlier revision current again (as a new revision; history is kept)')
    .requiredOption('--name <configuration>', 'configuration name')
    .option('--to <revision>', 'the revision to return to (default: the one before the current)')
    .action(async (options: { name: string; to?: string }) => {
      let to: number | undefined;
      if (options.to !== undefined) {
        to = Number(options.to);
        if (!Number.isInteger(to) || to < 1) throw new UsageError(`--to must be a revision number (1, 2, …), not ${JSON.stringify(options.to)}`);
      }
      await withApi(command, context, async (api, globals) => {
        const configuration = await api.call<ConfigurationView>('POST', `/v1/configurations/${segment(options.name)}/rollback`, { json: to === undefined ? {} : { to } });
        if (globals.json) printJson(context.stdout, configuration);
        else println(context.stdout, `configuration ${configuration.name} revision ${configuration.revision}: ${configuration.note ?? 'rolled back'} (id ${configuration.id})`);
      });
    });
  examples(command, ['strata rollback --name project1', 'strata rollback --name project1 --to 3']);
}
