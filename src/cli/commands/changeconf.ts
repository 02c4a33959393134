/** `strata changeconf` and `strata bumpconf`: move one layer of a configuration to another version. */
import type { Command } from 'commander';
import { printJson, println, type CliContext } from '../context.ts';
import type { ConfigurationView } from './views.ts';
import { examples, remoteCommand, segment, withApi } from './shared.ts';

type ChangeResult = { changed: boolean; configuration: ConfigurationView };

function report(context: CliContext, json: boolean | undefined, result: ChangeResult, component: string): void {
  if (json) return printJson(context.stdout, result);
  if (!result.changed) return;
  const layer = result.configuration.layers.find((l) => l.component === component);
  println(context.stdout, `configuration ${result.configuration.name} revision ${result.configuration.revision}: ${component} is now ${layer?.version}`);
}

/** Registers `changeconf`. */
export function registerChangeconf(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('changeconf'))
    .description('point one layer of a configuration at another version of its component')
    .requiredOption('--name <configuration>', 'configuration name')
    .requiredOption('--component <component>', 'the layer to change')
    .requiredOption('--version <version>', 'the version to use')
    .action(async (options: { name: string; component: string; version: string }) => {
      await withApi(command, context, async (api, globals) => {
        const result = await api.call<ChangeResult>('PATCH', `/v1/configurations/${segment(options.name)}/layers/${segment(options.component)}`, { json: { version: options.version } });
        report(context, globals.json, result, options.component);
      });
    });
  examples(command, ['strata changeconf --name project1 --component config --version v2']);
}

/** Registers `bumpconf`. */
export function registerBumpconf(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('bumpconf'))
    .description('point one layer at the newest version of its component (prints nothing when already there)')
    .requiredOption('--name <configuration>', 'configuration name')
    .requiredOption('--component <component>', 'the layer to bump')
    .action(async (options: { name: string; component: string }) => {
      await withApi(command, context, async (api, globals) => {
        const result = await api.call<ChangeResult>('PATCH', `/v1/configurations/${segment(options.name)}/layers/${segment(options.component)}`, { json: { latest: true } });
        report(context, globals.json, result, options.component);
      });
    });
  examples(command, ['strata bumpconf --name project1 --component config']);
}
