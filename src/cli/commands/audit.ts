/** `strata audit`: who did what, when, and how it ended. */
import type { Command } from 'commander';
import { printJson, UsageError, type CliContext } from '../context.ts';
import { table } from '../table.ts';
import { examples, remoteCommand, withApi } from './shared.ts';
import type { AuditView } from './views.ts';

/** Registers `audit`. */
export function registerAudit(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('audit'))
    .description('show the audit log, oldest first (admin only)')
    .option('--limit <n>', 'how many entries (the newest ones)', '50')
    .option('--after <seq>', 'entries after this sequence number instead of the newest')
    .action(async (options: { limit: string; after?: string }) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError('--limit must be a whole number from 1 to 10000');
      const after = options.after === undefined ? undefined : Number(options.after);
      if (after !== undefined && (!Number.isInteger(after) || after < 0)) throw new UsageError('--after must be a sequence number');
      await withApi(command, context, async (api, globals) => {
        const { entries } = await api.call<{ entries: AuditView[] }>('GET', '/v1/audit', { query: { limit, ...(after === undefined ? {} : { afterSeq: after }) } });
        if (globals.json) return printJson(context.stdout, { entries });
        context.stdout.write(table(['SEQ', 'TIME', 'ACTOR', 'ACTION', 'TARGET', 'RESULT'], entries.map((e) => [String(e.seq), e.at.slice(0, 19) + 'Z', e.actor, e.action, e.target, e.result])));
      });
    });
  examples(command, ['strata audit', 'strata audit --limit 200 --json']);
}
