/**
 * Copying one store into another (`strata migrate`): blobs (those versions name), versions,
 * configurations with their whole history (same revision numbers and ids), tokens, agents,
 * assignments, groups, orders, the audit log and server state. Records keep their times and
 * authors; `seq` numbers are the target's own (same order). Every step skips what the target
 * already holds, so an interrupted run is resumed by running it again with `resume`.
 */
import { StrataError } from '../core/errors.ts';
import type { AuditEntry, OrderRecord, Store } from './contract.ts';
import { ORDER_RETENTION } from './contract.ts';

/** How many of each kind a store holds; the end-of-migration check compares them. */
export type StoreCounts = Record<'state' | 'tokens' | 'components' | 'versions' | 'blobs' | 'configurations' | 'revisions' | 'agents' | 'assignments' | 'groups' | 'orders' | 'audit', number>;

/** Counts what a migration copies. */
export async function countStore(store: Store): Promise<StoreCounts> {
  const components = await store.listComponents();
  const versions = (await Promise.all(components.map((c) => store.listVersions(c.name)))).flat();
  const configurations = await store.listConfigurations();
  const revisions = (await Promise.all(configurations.map((c) => store.configurationHistory(c.name)))).reduce((n, h) => n + h.length, 0);
  return {
    state: Object.keys(await store.listState()).length,
    tokens: (await store.listTokens()).length,
    components: components.length,
    versions: versions.length,
    blobs: new Set(versions.map((v) => v.blob)).size,
    configurations: configurations.length,
    revisions,
    agents: (await store.listAgents()).length,
    assignments: (await store.listAssignments()).length,
    groups: (await store.listGroups()).length,
    orders: (await allOrders(store)).length,
    audit: (await allAudit(store)).length,
  };
}

/** Copies `source` into `target`; refuses a target that holds anything unless `resume`. */
export async function migrateStore(source: Store, target: Store, options: { resume?: boolean; progress?: (line: string) => void } = {}): Promise<{ source: StoreCounts; target: StoreCounts }> {
  const say = options.progress ?? (() => undefined);
  if (!options.resume) {
    const held = Object.entries(await countStore(target)).filter(([, n]) => n > 0).map(([kind, n]) => `${n} ${kind}`);
    if (held.length > 0) {
      throw new StrataError('BAD_REQUEST', `the target is not empty (${held.join(', ')}); migrate into an empty store, or pass --resume to finish an interrupted migration into it`);
    }
  }

  const state = await source.listState();
  for (const [key, value] of Object.entries(state)) await target.putStateIfAbsent(key, value);
  say(`server state: ${Object.keys(state).length} entries`);

  const tokens = await source.listTokens();
  for (const token of tokens) if ((await target.getToken(token.id)) === undefined) await target.createToken(token);
  say(`tokens: ${tokens.length}`);

  const components = await source.listComponents();
  const total = components.reduce((n, c) => n + c.versionCount, 0);
  let done = 0;
  let bytes = 0;
  for (const component of components) {
    for (const version of await source.listVersions(component.name)) {
      done += 1;
      if ((await target.getVersion(version.component, version.version)) !== undefined) continue;
      if ((await target.statBlob(version.blob)) === undefined) {
        const { stream } = await source.getBlob(version.blob);
        await target.putBlob(stream, { expectedSha256: version.blob });
        bytes += version.size;
      }
      await target.importRecord({ kind: 'version', version });
      if (done % 25 === 0 || done === total) say(`versions: ${done}/${total} (${(bytes / 1048576).toFixed(1)} MiB of blobs copied)`);
    }
  }
  say(`versions: ${total} in ${components.length} components (${(bytes / 1048576).toFixed(1)} MiB of blobs copied)`);

  const configurations = await source.listConfigurations();
  for (const configuration of configurations) {
    const have = (await target.getConfiguration(configuration.name))?.revision ?? 0;
    const missing = (await source.configurationHistory(configuration.name)).filter((r) => r.revision > have).map(({ seq: _seq, ...revision }) => revision);
    if (missing.length > 0) await target.importRecord({ kind: 'history', revisions: missing });
  }
  say(`configurations: ${configurations.length}`);

  const agents = await source.listAgents();
  for (const agent of agents) if ((await target.getAgent(agent.name)) === undefined) await target.importRecord({ kind: 'agent', agent });
  const assignments = await source.listAssignments();
  for (const assignment of assignments) await target.importRecord({ kind: 'assignment', assignment });
  const groups = await source.listGroups();
  for (const group of groups) await target.importRecord({ kind: 'group', group });
  say(`agents: ${agents.length}, assignments: ${assignments.length}, groups: ${groups.length}`);

  const orders = (await allOrders(source)).reverse();
  for (const order of orders) {
    const existing = await target.getOrder(order.id);
    if (existing === undefined) {
      await target.createOrder({ id: order.id, createdAt: order.createdAt, actor: order.actor, args: order.args, target: order.target, hosts: order.hosts }, { keep: ORDER_RETENTION });
    }
    if (order.finishedAt !== undefined && existing?.finishedAt === undefined) {
      const full = await source.getOrder(order.id);
      await target.finishOrder(order.id, { summary: order.summary!, results: full?.results ?? {}, finishedAt: order.finishedAt });
    }
  }
  say(`orders: ${orders.length}`);

  // The audit log is append-only: entries the target has are the first ones copied before.
  const already = (await allAudit(target)).length;
  const entries = await allAudit(source);
  for (const entry of entries.slice(already)) {
    await target.appendAudit({ at: entry.at, actor: entry.actor, action: entry.action, target: entry.target, result: entry.result, ...(entry.details === undefined ? {} : { details: entry.details }) });
  }
  say(`audit log: ${entries.length} entries`);

  const counts = { source: await countStore(source), target: await countStore(target) };
  const differ = (Object.keys(counts.source) as (keyof StoreCounts)[]).filter((kind) => counts.source[kind] !== counts.target[kind]);
  if (differ.length > 0) {
    throw new StrataError('INTERNAL', `the copy does not match the source: ${differ.map((k) => `${k} ${counts.target[k]} of ${counts.source[k]}`).join(', ')}`, { details: counts });
  }
  return counts;
}

/** Every order, newest first. */
async function allOrders(store: Store): Promise<OrderRecord[]> {
  const out: OrderRecord[] = [];
  for (;;) {
    const last = out[out.length - 1];
    const page = await store.listOrders({ limit: 500, ...(last ? { before: last.id } : {}) });
    out.push(...page);
    if (page.length < 500) return out;
  }
}

/** Every audit entry, oldest first. */
async function allAudit(store: Store): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for (;;) {
    const page = await store.listAudit({ afterSeq: out[out.length - 1]?.seq ?? 0, limit: 1000 });
    out.push(...page);
    if (page.length < 1000) return out;
  }
}
