/** `strata addconf`: create a configuration from ordered layers (replacing one needs --force). */
import type { Command } from 'commander';
import { printJson, println, type CliContext } from '../context.ts';
import type { ConfigurationView } from './views.ts';
import { collect, examples, remoteCommand, parseLayers, segment, withApi } from './shared.ts';
import { readServiceFile } from './service-file.ts';

/** Registers `addconf`. */
export function registerAddconf(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('addconf'))
    .description('create a configuration from ordered layers; later layers overwrite earlier files')
    .requiredOption('--name <configuration>', 'configuration name')
    .requiredOption('--layer <component:version>', 'a layer, bottom first (repeat for each layer)', collect)
    .option('--force', 'replace the configuration if it exists (deploy-tools replaced silently; Strata asks)')
    .option('--service <file>', 'the service the agents run from each release (JSON or TOML; see docs/operations.md)')
    .action(async (options: { name: string; layer: string[]; force?: boolean; service?: string }) => {
      const layers = parseLayers(options.layer);
      const service = options.service === undefined ? undefined : await readServiceFile(options.service);
      await withApi(command, context, async (api, globals) => {
        const body = { layers, ...(service ? { settings: { service } } : {}), ...(options.force ? { force: true } : {}) };
        const configuration = await api.call<ConfigurationView>('PUT', `/v1/configurations/${segment(options.name)}`, { json: body });
        if (globals.json) printJson(context.stdout, configuration);
        else println(context.stdout, `configuration ${configuration.name} revision ${configuration.revision} (id ${configuration.id})`);
      });
    });
  examples(command, ['strata addconf --name project1 --layer code:v1 --layer config:v1', 'strata addconf --name project1 --layer code:v2 --layer config:v1 --force', 'strata addconf --name web --layer app:v1 --service web-service.toml']);
}
