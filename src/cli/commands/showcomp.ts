/** `strata showcomp` and `strata components`: components and their versions. */
import type { Command } from 'commander';
import { printJson, println, type CliContext } from '../context.ts';
import { renderShowcomp } from '../../core/deploy-tools-text.ts';
import type { VersionView } from './views.ts';
import { examples, remoteCommand, segment, withApi } from './shared.ts';

/** Registers `showcomp`. */
export function registerShowcomp(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('showcomp'))
    .description("list a component's versions, oldest first, with the time each was added")
    .requiredOption('--name <component>', 'component name')
    .action(async (options: { name: string }) => {
      await withApi(command, context, async (api, globals) => {
        const result = await api.call<{ name: string; versions: VersionView[] }>('GET', `/v1/components/${segment(options.name)}`);
        if (globals.json) printJson(context.stdout, result);
        else context.stdout.write(renderShowcomp(result.versions));
      });
    });
  examples(command, ['strata showcomp --name code']);
}

/** Registers `components`. */
export function registerComponents(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('components'))
    .description('list component names')
    .action(async () => {
      await withApi(command, context, async (api, globals) => {
        const result = await api.call<{ components: { name: string; versionCount: number; latest: VersionView }[] }>('GET', '/v1/components');
        if (globals.json) printJson(context.stdout, result);
        else for (const component of result.components) println(context.stdout, component.name);
      });
    });
  examples(command, ['strata components', 'strata components --json']);
}

/** Registers `configurations`. */
export function registerConfigurations(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('configurations'))
    .description('list configuration names')
    .action(async () => {
      await withApi(command, context, async (api, globals) => {
        const result = await api.call<{ configurations: { name: string }[] }>('GET', '/v1/configurations');
        if (globals.json) printJson(context.stdout, result);
        else for (const configuration of result.configurations) println(context.stdout, configuration.name);
      });
    });
  examples(command, ['strata configurations']);
}
