/** `strata agents`, `strata agents show NODE`, `strata agents revoke NODE`: the enrolled machines. */
import type { Command } from 'commander';
import { printJson, println, type CliContext } from '../context.ts';
import { table } from '../table.ts';
import { configText, labelsText, onlineText, serviceText, type AgentDetailView, type AgentView } from './fleet-views.ts';
import { examples, remoteCommand, segment, withApi } from './shared.ts';
import { targetFrom, targetOptions, type TargetOptions } from './target.ts';
import { printMetrics } from './agent-metrics-view.ts';
import type { AgentMetrics } from '../../protocol/metrics.ts';

/** `2024-05-01T10:00:00Z`, or `never`. */
function when(iso: string | null | undefined): string {
  return iso ? `${iso.slice(0, 19)}Z` : 'never';
}

/** Registers the `agents` command group. */
export function registerAgents(program: Command, context: CliContext): void {
  const group = targetOptions(remoteCommand(program.command('agents')), { all: false })
    .description('list enrolled agents: labels, whether they are online, and their configurations; with a target flag, only the agents it picks')
    .action(async (options: TargetOptions) => {
      const target = targetFrom(options, false);
      const query = target === undefined ? undefined : { ...(target.hosts ? { hosts: target.hosts.join(',') } : {}), group: target.group, selector: target.selector };
      await withApi(group, context, async (api, globals) => {
        const { agents } = await api.call<{ agents: AgentView[] }>('GET', '/v1/agents', query ? { query } : {});
        if (globals.json) return printJson(context.stdout, { agents });
        const rows = agents.map((a) => [a.name, labelsText(a.labels), onlineText(a), a.configurations.map(configText).join(', ') || '-']);
        context.stdout.write(table(['NAME', 'LABELS', 'ONLINE', 'CONFIGS'], rows));
      });
    });
  examples(group, ['strata agents', 'strata agents --json', "strata agents --selector 'role=web,region!=eu'", 'strata agents --group web']);

  const show = remoteCommand(group.command('show'))
    .description("one agent: labels, inventory, configurations, and its last hook output")
    .argument('<node>', 'agent name')
    .option('--metrics', 'also its latest vital signs and their recent history')
    .action(async (node: string, options: { metrics?: boolean }) => {
      await withApi(show, context, async (api, globals) => {
        const agent = await api.call<AgentDetailView>('GET', `/v1/agents/${segment(node)}`);
        const metrics = options.metrics ? await api.call<AgentMetrics>('GET', `/v1/agents/${segment(node)}/metrics`) : undefined;
        if (globals.json) return printJson(context.stdout, metrics ? { ...agent, metrics } : agent);
        const inventory = agent.inventory ?? {};
        const facts: [string, string][] = [
          ['name', agent.name], ['labels', labelsText(agent.labels)], ['online', onlineText(agent)],
          ...(agent.replica ? [['replica', agent.replica] as [string, string]] : []),
          ['last seen', when(agent.lastSeen)], ['enrolled', when(agent.enrolledAt)],
          ['tracks', agent.tracks.join(', ') || '-'], ['assigned', agent.assigned.join(', ') || '-'],
          ...(['hostname', 'os', 'kernel', 'arch', 'agentVersion'] as const).filter((k) => inventory[k] !== undefined).map((k): [string, string] => [k, String(inventory[k])]),
          ...(agent.keyFingerprint ? [['key', agent.keyFingerprint] as [string, string]] : []),
        ];
        const width = Math.max(...facts.map(([k]) => k.length));
        for (const [key, value] of facts) println(context.stdout, `${`${key}:`.padEnd(width + 2)}${value}`);
        println(context.stdout);
        // The SERVICE column appears only when a configuration runs a service.
        const services = agent.configurations.some((c) => c.service);
        const rows = agent.configurations.map((c) => [c.configuration, c.revision === null ? '-' : String(c.revision), c.currentRevision === undefined ? '-' : String(c.currentRevision), c.phase, ...(services ? [serviceText(c.service)] : []), c.error?.message ?? '']);
        context.stdout.write(table(['CONFIG', 'REVISION', 'CURRENT', 'PHASE', ...(services ? ['SERVICE'] : []), 'ERROR'], rows));
        for (const { configuration, hookOutput } of agent.configurations) {
          if (!hookOutput) continue;
          println(context.stdout, `\nhook output of ${configuration}:`);
          context.stdout.write(hookOutput.endsWith('\n') ? hookOutput : `${hookOutput}\n`);
        }
        if (metrics) printMetrics(context.stdout, metrics);
      });
    });
  examples(show, ['strata agents show web-1', 'strata agents show web-1 --metrics']);

  const revoke = remoteCommand(group.command('revoke'))
    .description('revoke an agent (admin): its requests are refused and its channel closes at once')
    .argument('<node>', 'agent name')
    .action(async (node: string) => {
      await withApi(revoke, context, async (api, globals) => {
        const agent = await api.call<AgentView>('POST', `/v1/agents/${segment(node)}/revoke`);
        if (globals.json) printJson(context.stdout, agent);
        else println(context.stdout, `revoked agent ${agent.name}; it can enroll again only with a new join token and key`);
      });
    });
  examples(revoke, ['strata agents revoke web-1']);
}
