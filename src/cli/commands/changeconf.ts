/** `strata changeconf` and `strata bumpconf`: move one layer of a configuration to another version. */
import type { Command } from 'commander';
import { printJson, println, type CliContext } from '../context.ts';
import type { ConfigurationView } from './views.ts';
import { examples, remoteCommand, segment, withApi } from './shared.ts';
import { UsageError } from '../context.ts';
import { readServiceFile } from './service-file.ts';

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
    .option('--component <component>', 'the layer to change')
    .option('--version <version>', 'the version to use')
    .option('--service <file>', 'set the service the agents run (JSON or TOML); a change redeploys')
    .option('--no-service', 'remove the service section (agents stop the service)')
    .action(async (options: { name: string; component?: string; version?: string; service?: string | false }) => {
      if ((options.component === undefined) !== (options.version === undefined)) throw new UsageError('--component and --version go together');
      if (options.component === undefined && options.service === undefined) throw new UsageError('nothing to change: pass --component and --version, --service FILE or --no-service');
      if (options.service !== undefined) {
        const service = options.service === false ? undefined : await readServiceFile(options.service);
        await withApi(command, context, async (api, globals) => {
          const current = await api.call<ConfigurationView>('GET', `/v1/configurations/${segment(options.name)}`);
          const layers = current.layers.map((l) => ({ component: l.component, version: l.component === options.component ? options.version! : l.version }));
          if (options.component !== undefined && !current.layers.some((l) => l.component === options.component)) throw new UsageError(`configuration ${options.name} has no layer ${options.component}`);
          const { service: _old, ...rest } = current.settings ?? {};
          const settings = service ? { ...rest, service } : rest;
          const configuration = await api.call<ConfigurationView>('PUT', `/v1/configurations/${segment(options.name)}`, { json: { layers, settings, expectedRevision: current.revision } });
          const changed = configuration.revision !== current.revision;
          if (globals.json) return printJson(context.stdout, { changed, configuration });
          if (changed) println(context.stdout, `configuration ${configuration.name} revision ${configuration.revision}: service ${service ? 'set' : 'removed'}`);
        });
        return;
      }
      await withApi(command, context, async (api, globals) => {
        const result = await api.call<ChangeResult>('PATCH', `/v1/configurations/${segment(options.name)}/layers/${segment(options.component!)}`, { json: { version: options.version } });
        report(context, globals.json, result, options.component!);
      });
    });
  examples(command, ['strata changeconf --name project1 --component config --version v2', 'strata changeconf --name web --service web-service.toml', 'strata changeconf --name web --no-service']);
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
