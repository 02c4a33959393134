/** The target flags of order commands and `strata agents`: --hosts, --group, --selector, --all. */
import type { Command } from 'commander';
import { canonicalSelector } from '../../protocol/selector.ts';
import type { Target } from '../../protocol/order-api.ts';
import { UsageError } from '../context.ts';

/** The target flags as commander hands them over. */
export interface TargetOptions {
  hosts?: string;
  group?: string;
  selector?: string;
  all?: boolean;
}

/** Adds --hosts, --group, --selector and (for orders) --all. */
export function targetOptions(command: Command, options: { all: boolean }): Command {
  command
    .option('--hosts <names>', 'these agents, comma-separated (web-1,web-2)')
    .option('--group <name>', 'the agents of a group (strata group list)')
    .option('--selector <selector>', "agents whose labels match (role=web,region!=eu,tier in (a,b))");
  if (options.all) command.option('--all', 'every enrolled agent');
  return command;
}

/** The one target the flags give; `required` makes giving none a usage error (orders), otherwise none means every agent. */
export function targetFrom(options: TargetOptions, required: boolean): Target | undefined {
  const given = (['hosts', 'group', 'selector', 'all'] as const).filter((key) => options[key] !== undefined && options[key] !== false);
  if (given.length > 1) throw new UsageError(`--${given.join(' and --')} given together: target with exactly one of --hosts, --group, --selector${required ? ' or --all' : ''}`);
  if (given.length === 0) {
    if (required) throw new UsageError('no target: pass one of --hosts a,b, --group NAME, --selector EXPR or --all');
    return undefined;
  }
  if (options.hosts !== undefined) {
    const hosts = [...new Set(options.hosts.split(',').map((h) => h.trim()).filter((h) => h !== ''))];
    if (hosts.length === 0) throw new UsageError('--hosts needs at least one agent name');
    return { hosts };
  }
  if (options.group !== undefined) return { group: options.group };
  if (options.selector !== undefined) {
    try {
      return { selector: canonicalSelector(options.selector) };
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  return { all: true };
}
