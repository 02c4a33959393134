/** `strata showconf`: a configuration's layers, deploy-tools' layout, or its deploy-tools JSON. */
import type { Command } from 'commander';
import { printJson, type CliContext, UsageError } from '../context.ts';
import { renderShowconf } from '../../core/deploy-tools-text.ts';
import type { ConfigurationView } from './views.ts';
import { examples, remoteCommand, segment, withApi } from './shared.ts';

/** Registers `showconf`. */
export function registerShowconf(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('showconf'))
    .description("show a configuration's layers")
    .requiredOption('--name <configuration>', 'configuration name')
    .option('-v, --verbose', "also show name, modification time and hash, and an imported image's config")
    .option('--format <format>', 'table (default) or deploy-tools (the exact configs/NAME.json document)', 'table')
    .action(async (options: { name: string; verbose?: boolean; format: string }) => {
      if (options.format !== 'table' && options.format !== 'deploy-tools') throw new UsageError(`unknown format ${JSON.stringify(options.format)}: use table or deploy-tools`);
      await withApi(command, context, async (api, globals) => {
        if (options.format === 'deploy-tools') {
          const response = await api.raw({ method: 'GET', path: `/v1/configurations/${segment(options.name)}/deploy-tools.json` });
          context.stdout.write(await response.text());
          return;
        }
        const configuration = await api.call<ConfigurationView>('GET', `/v1/configurations/${segment(options.name)}`);
        if (globals.json) printJson(context.stdout, configuration);
        else context.stdout.write(renderShowconf(configuration, Boolean(options.verbose)));
      });
    });
  examples(command, ['strata showconf --name project1', 'strata showconf --name project1 -v', 'strata showconf --name project1 --format deploy-tools']);
}
