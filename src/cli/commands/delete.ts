/** `strata delver`, `strata delcomp`, `strata delconf`: removals, refused while something uses them. */
import type { Command } from 'commander';
import { printJson, println, type CliContext } from '../context.ts';
import { examples, remoteCommand, segment, withApi } from './shared.ts';

function done(context: CliContext, json: boolean | undefined, what: Record<string, unknown>, line: string): void {
  if (json) printJson(context.stdout, { deleted: what });
  else println(context.stdout, line);
}

/** Registers `delver`. */
export function registerDelver(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('delver'))
    .description('delete a version of a component (refused while a configuration uses it)')
    .requiredOption('--name <component>', 'component name')
    .requiredOption('--version <version>', 'version name')
    .action(async (options: { name: string; version: string }) => {
      await withApi(command, context, async (api, globals) => {
        await api.call('DELETE', `/v1/components/${segment(options.name)}/versions/${segment(options.version)}`);
        done(context, globals.json, { component: options.name, version: options.version }, `deleted ${options.name}:${options.version}`);
      });
    });
  examples(command, ['strata delver --name code --version v1']);
}

/** Registers `delcomp`. */
export function registerDelcomp(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('delcomp'))
    .description('delete a component and all its versions (refused while a configuration uses one)')
    .requiredOption('--name <component>', 'component name')
    .action(async (options: { name: string }) => {
      await withApi(command, context, async (api, globals) => {
        await api.call('DELETE', `/v1/components/${segment(options.name)}`);
        done(context, globals.json, { component: options.name }, `deleted component ${options.name}`);
      });
    });
  examples(command, ['strata delcomp --name code']);
}

/** Registers `delconf`. */
export function registerDelconf(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('delconf'))
    .description('delete a configuration and its history (needs --force)')
    .requiredOption('--name <configuration>', 'configuration name')
    .option('--force', 'confirm the removal')
    .action(async (options: { name: string; force?: boolean }) => {
      await withApi(command, context, async (api, globals) => {
        await api.call('DELETE', `/v1/configurations/${segment(options.name)}`, { query: { force: Boolean(options.force) } });
        done(context, globals.json, { configuration: options.name }, `deleted configuration ${options.name}`);
      });
    });
  examples(command, ['strata delconf --name project1 --force']);
}
