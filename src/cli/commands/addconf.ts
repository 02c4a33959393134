/** `strata addconf`: create a configuration from ordered layers (replacing one needs --force). */
import type { Command } from 'commander';
import { printJson, println, type CliContext } from '../context.ts';
import type { ConfigurationView } from './views.ts';
import { collect, examples, remoteCommand, parseLayers, segment, withApi } from './shared.ts';

/** Registers `addconf`. */
export function registerAddconf(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('addconf'))
    .description('create a configuration from ordered layers; later layers overwrite earlier files')
    .requiredOption('--name <configuration>', 'configuration name')
    .requiredOption('--layer <component:version>', 'a layer, bottom first (repeat for each layer)', collect)
    .option('--force', 'replace the configuration if it exists (deploy-tools replaced silently; Strata asks)')
    .action(async (options: { name: string; layer: string[]; force?: boolean }) => {
      const layers = parseLayers(options.layer);
      await withApi(command, context, async (api, globals) => {
        const configuration = await api.call<ConfigurationView>('PUT', `/v1/configurations/${segment(options.name)}`, { json: { layers, ...(options.force ? { force: true } : {}) } });
        if (globals.json) printJson(context.stdout, configuration);
        else println(context.stdout, `configuration ${configuration.name} revision ${configuration.revision} (id ${configuration.id})`);
      });
    });
  examples(command, ['strata addconf --name project1 --layer code:v1 --layer config:v1', 'strata addconf --name project1 --layer code:v2 --layer config:v1 --force']);
}
