/**
 * An agent's desired state: the configurations it tracks itself plus those assigned to selectors
 * its labels match, each at its current revision. Pure over its inputs, so the HTTP route (which
 * reads the store) and the channel (which keeps a live cache) compute it identically.
 */
import type { DesiredState } from '../../protocol/agent.ts';
import { parseSelector, matches, type Selector } from '../../protocol/selector.ts';
import type { Assignment, Configuration, Store } from '../../store/contract.ts';

/** An assignment with its selector parsed. */
export interface ParsedAssignment {
  configuration: string;
  selector: Selector;
}

/** Parses stored assignments; one whose selector no longer parses is skipped rather than breaking every agent. */
export function parseAssignments(assignments: readonly Assignment[]): ParsedAssignment[] {
  const parsed: ParsedAssignment[] = [];
  for (const assignment of assignments) {
    try {
      parsed.push({ configuration: assignment.configuration, selector: parseSelector(assignment.selector) });
    } catch {
      // Stored selectors were validated when added; nothing sensible to do with a bad one here.
    }
  }
  return parsed;
}

/** The configurations an agent tracks: its own `tracks` ∪ assignments matching its labels, sorted. */
export function trackedConfigurations(agent: { tracks: readonly string[]; labels: Readonly<Record<string, string>> }, assignments: readonly ParsedAssignment[]): string[] {
  const names = new Set(agent.tracks);
  for (const assignment of assignments) if (matches(assignment.selector, agent.labels)) names.add(assignment.configuration);
  return [...names].sort();
}

/** Builds the desired state from the tracked names and a way to find each configuration's current revision. */
export function buildDesired(agent: string, tracked: readonly string[], lookup: (name: string) => Configuration | undefined, seq: number): DesiredState {
  const configurations: Configuration[] = [];
  const missing: string[] = [];
  for (const name of tracked) {
    const configuration = lookup(name);
    if (configuration) configurations.push(configuration);
    else missing.push(name);
  }
  const reflected = configurations.reduce((max, c) => Math.max(max, c.seq), seq);
  return { agent, seq: reflected, configurations, missing };
}

/** The desired state of an agent read from the store: the ground truth an agent polls. */
export async function desiredFromStore(store: Store, agent: { name: string; tracks: readonly string[]; labels: Readonly<Record<string, string>> }, seq = 0): Promise<DesiredState> {
  const tracked = trackedConfigurations(agent, parseAssignments(await store.listAssignments()));
  const found = new Map<string, Configuration>();
  for (const name of tracked) {
    const configuration = await store.getConfiguration(name);
    if (configuration) found.set(name, configuration);
  }
  return buildDesired(agent.name, tracked, (name) => found.get(name), seq);
}
