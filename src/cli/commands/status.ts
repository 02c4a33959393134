/** `strata status --name CONF`: how far a configuration's current revision has reached its agents. */
import type { Command } from 'commander';
import { printJson, println, type CliContext } from '../context.ts';
import { table } from '../table.ts';
import { serviceText, type ConfigurationStatusView } from './fleet-views.ts';
import { examples, remoteCommand, segment, withApi } from './shared.ts';

/** Registers `status`. */
export function registerStatus(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('status'))
    .description("a configuration's rollout: agents tracking it, how many run its current revision, which failed and why")
    .requiredOption('--name <configuration>', 'configuration name')
    .action(async (options: { name: string }) => {
      await withApi(command, context, async (api, globals) => {
        const status = await api.call<ConfigurationStatusView>('GET', `/v1/configurations/${segment(options.name)}/status`);
        if (globals.json) return printJson(context.stdout, status);
        println(context.stdout, `${status.configuration} revision ${status.revision}: ${status.upToDate}/${status.agents} agents deployed, ${status.failed} failed, ${status.online} online`);
        if (status.rows.length === 0) return;
        println(context.stdout);
        const services = status.rows.some((r) => r.service);
        const rows = status.rows.map((r) => [
          r.agent, r.online ? 'yes' : 'no', r.currentRevision === undefined ? '-' : String(r.currentRevision), r.phase, ...(services ? [serviceText(r.service)] : []),
          r.error ? `${r.error.message}${r.hookExitCode === undefined || r.hookExitCode === null ? '' : ` (exit ${r.hookExitCode})`}` : '',
        ]);
        context.stdout.write(table(['AGENT', 'ONLINE', 'CURRENT', 'PHASE', ...(services ? ['SERVICE'] : []), 'MESSAGE'], rows));
      });
    });
  examples(command, ['strata status --name site', 'strata status --name site --json']);
}
