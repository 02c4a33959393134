/** `strata showconf`: a configuration's layers, deploy-tools' layout, or its deploy-tools JSON. */
import type { Command } from 'commander';
import { printJson, type CliContext, UsageError } from '../context.ts';
import { tabwrite } from '../table.ts';
import { deployToolsHash } from '../../core/configuration-id.ts';
import { ImageConfigSchema } from '../../protocol/service.ts';
import type { ConfigurationView } from './views.ts';
import { examples, remoteCommand, secondsTime, segment, withApi } from './shared.ts';

/** The `-v` lines for an imported image's config (`settings.image`), after deploy-tools' lines; empty without one. */
export function renderImageConfig(settings: Record<string, unknown> | undefined): string {
  const parsed = ImageConfigSchema.safeParse(settings?.['image']);
  if (settings?.['image'] === undefined || !parsed.success) return '';
  const image = parsed.data;
  const lines = [
    `Image:\t${image.ref ?? '(untagged)'}`,
    `Entrypoint:\t${JSON.stringify(image.entrypoint)}`,
    `Cmd:\t${JSON.stringify(image.cmd)}`,
    `Workdir:\t${image.workdir ?? ''}`,
    `User:\t${image.user ?? ''}`,
    ...Object.entries(image.env).map(([key, value]) => `Env:\t${key}=${value}`),
  ];
  return `\n${lines.join('\n')}\n`;
}

/** deploy-tools' showconf output, `-v` adding the Name/Mtime/Hash header (and an imported image's config after the layers). */
export function renderShowconf(configuration: ConfigurationView, verbose: boolean): string {
  const rows = tabwrite(configuration.layers.map((l) => [l.component, l.version, secondsTime(l.createdAt)]));
  if (!verbose) return rows;
  const hash = deployToolsHash(configuration.layers.map((l) => l.blob));
  return `Name:\t${configuration.name}\nMtime:\t${secondsTime(configuration.updatedAt)}\nHash:\t${hash}\n\n${rows}${renderImageConfig(configuration.settings)}`;
}

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
