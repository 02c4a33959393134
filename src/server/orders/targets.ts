/**
 * Which agents a target picks. Exactly one of `hosts`, `group`, `selector` or `all` must be
 * given; naming an agent that is not enrolled is an error (a typo should not silently shrink an
 * order), and revoked agents are never picked.
 */
import { StrataError } from '../../core/errors.ts';
import type { Target } from '../../protocol/order-api.ts';
import { canonicalSelector, matches, parseSelector, type Selector } from '../../protocol/selector.ts';
import type { AgentRecord, Store } from '../../store/contract.ts';

/** What a target resolved to. */
export interface Resolved {
  /** Picked agents (enrolled, not revoked), sorted. */
  hosts: string[];
}

/** Parses a selector, or throws INVALID_SELECTOR with the parser's message. */
export function selectorOf(text: string): Selector {
  try {
    return parseSelector(text);
  } catch (error) {
    throw new StrataError('INVALID_SELECTOR', (error as Error).message, { details: { selector: text } });
  }
}

/** The canonical spelling of a selector, or INVALID_SELECTOR. */
export function canonicalSelectorText(text: string): string {
  selectorOf(text);
  return canonicalSelector(text);
}

/** Throws NO_TARGET unless exactly one way of targeting is given. */
export function assertOneTarget(target: Target): void {
  const given = (['hosts', 'group', 'selector', 'all'] as const).filter((key) => target[key] !== undefined);
  if (given.length !== 1) {
    const what = given.length === 0 ? 'no target given' : `${given.join(' and ')} given together`;
    throw new StrataError('NO_TARGET', `${what}: give exactly one of hosts, group, selector or all`, { details: { given } });
  }
}

/** Agents named in a list: every name must be enrolled; revoked ones are left out. */
function byNames(agents: ReadonlyMap<string, AgentRecord>, names: readonly string[]): string[] {
  const unknown = names.filter((name) => !agents.has(name));
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 10).join(', ') + (unknown.length > 10 ? `, … (${unknown.length} in all)` : '');
    throw new StrataError('AGENT_NOT_FOUND', `no enrolled agent named ${shown}`, { details: { unknown: unknown.slice(0, 100) } });
  }
  return names.filter((name) => !agents.get(name)!.revokedAt);
}

/** Resolves a target against the enrolled agents. */
export async function resolveTarget(store: Store, target: Target): Promise<Resolved> {
  assertOneTarget(target);
  const list = await store.listAgents();
  const agents = new Map(list.map((agent) => [agent.name, agent]));
  const live = list.filter((agent) => !agent.revokedAt);
  let picked: string[];
  if (target.hosts !== undefined) {
    picked = byNames(agents, target.hosts);
  } else if (target.group !== undefined) {
    const group = await store.getGroup(target.group);
    if (!group) throw new StrataError('GROUP_NOT_FOUND', `group ${JSON.stringify(target.group)} not found`, { details: { name: target.group } });
    if (group.hosts !== undefined) picked = byNames(agents, group.hosts);
    else {
      const selector = selectorOf(group.selector ?? '');
      picked = live.filter((agent) => matches(selector, agent.labels)).map((agent) => agent.name);
    }
  } else if (target.selector !== undefined) {
    const selector = selectorOf(target.selector);
    picked = live.filter((agent) => matches(selector, agent.labels)).map((agent) => agent.name);
  } else {
    picked = live.map((agent) => agent.name);
  }
  return { hosts: [...new Set(picked)].sort() };
}
