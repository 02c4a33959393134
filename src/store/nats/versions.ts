/**
 * Components and their immutable versions, in the ledger: `ver.<component>.<version>` holds a
 * version record (or a tombstone), and `comp.<component>` a component tombstone that deletes,
 * in one message, every version written before it. addVersion, deleteVersion and
 * deleteComponent are ledger transactions, so their checks (blob present, nothing in use) hold
 * at the moment they commit, against putConfiguration, deleteBlob and sweep alike.
 */
import { StrataError } from '../../core/errors.ts';
import type { ComponentSummary, ComponentVersion } from '../contract.ts';
import { fromJson, isTombstone, nowIso, toJson } from './codec.ts';
import { readBlobRecord } from './blob-records.ts';
import { currentConfigurations } from './configuration-reads.ts';
import type { NatsContext } from './context.ts';
import { ledgerSubject, transact } from './ledger.ts';
import { getLast, lastPerSubject } from './stream-reads.ts';

/** A live version with the ledger sequence that wrote it (its place in "oldest first"). */
export interface StoredVersion {
  version: ComponentVersion;
  seq: number;
}

/** A version if it is live, and its subject's newest sequence (0: none) for compare-and-set. */
export async function readVersion(ctx: NatsContext, component: string, version: string): Promise<{ live: StoredVersion | undefined; seq: number }> {
  // The component tombstone first: a version older than it is deleted, even before it is purged.
  const tombstone = await getLast(ctx, ctx.layout.ledger.stream, ledgerSubject.component(ctx, component));
  const message = await getLast(ctx, ctx.layout.ledger.stream, ledgerSubject.version(ctx, component, version));
  if (message === undefined) return { live: undefined, seq: 0 };
  const live = !isTombstone(message) && message.seq > (tombstone?.seq ?? 0);
  return { live: live ? { version: fromJson<ComponentVersion>(message.data), seq: message.seq } : undefined, seq: message.seq };
}

/** One version, or undefined. */
export async function getVersion(ctx: NatsContext, component: string, version: string): Promise<ComponentVersion | undefined> {
  return (await readVersion(ctx, component, version)).live?.version;
}

/** Live versions (of one component, or all), oldest first. */
export async function liveVersions(ctx: NatsContext, component?: string): Promise<StoredVersion[]> {
  const stream = ctx.layout.ledger.stream;
  const messages = await lastPerSubject(ctx, stream, component === undefined ? ledgerSubject.allVersions(ctx) : ledgerSubject.componentVersions(ctx, component));
  const tombstones = new Map<string, number>();
  if (component === undefined) {
    for (const m of await lastPerSubject(ctx, stream, ledgerSubject.allComponents(ctx))) tombstones.set(m.subject, m.seq);
  } else {
    const m = await getLast(ctx, stream, ledgerSubject.component(ctx, component));
    if (m !== undefined) tombstones.set(m.subject, m.seq);
  }
  const live: StoredVersion[] = [];
  for (const m of messages) {
    if (isTombstone(m)) continue;
    const version = fromJson<ComponentVersion>(m.data);
    if (m.seq > (tombstones.get(ledgerSubject.component(ctx, version.component)) ?? 0)) live.push({ version, seq: m.seq });
  }
  return live.sort((a, b) => a.seq - b.seq);
}

/** Adds a version under the rules of `Store.addVersion`. */
export function addVersion(ctx: NatsContext, input: { component: string; version: string; blob: string; actor: string }): Promise<ComponentVersion> {
  const { component, version, blob } = input;
  return transact(ctx, async () => {
    const [existing, stored] = await Promise.all([readVersion(ctx, component, version), readBlobRecord(ctx, blob)]);
    if (existing.live) throw new StrataError('VERSION_EXISTS', `version ${JSON.stringify(version)} already exists`, { details: { component, version } });
    if (stored.record === undefined) throw new StrataError('BLOB_NOT_FOUND', `blob ${blob} not found: upload it first`, { details: { sha256: blob } });
    const record: ComponentVersion = { component, version, blob, size: stored.record.size, createdAt: nowIso(), createdBy: input.actor };
    return { write: { subject: ledgerSubject.version(ctx, component, version), data: toJson(record), rollup: true }, done: () => record };
  });
}

/** A component's versions, oldest first; COMPONENT_NOT_FOUND when it has none. */
export async function listVersions(ctx: NatsContext, component: string): Promise<ComponentVersion[]> {
  const versions = await liveVersions(ctx, component);
  if (versions.length === 0) throw componentNotFound(component);
  return versions.map((v) => v.version);
}

/** Every component with its version count and latest version, sorted by name. */
export async function listComponents(ctx: NatsContext): Promise<ComponentSummary[]> {
  const byComponent = new Map<string, ComponentVersion[]>();
  for (const { version } of await liveVersions(ctx)) {
    const list = byComponent.get(version.component) ?? [];
    list.push(version);
    byComponent.set(version.component, list);
  }
  return [...byComponent.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, versions]) => ({ name, versionCount: versions.length, latest: versions[versions.length - 1]! }));
}

/** Deletes one version under the rules of `Store.deleteVersion`. */
export async function deleteVersion(ctx: NatsContext, component: string, version: string): Promise<void> {
  const subject = ledgerSubject.version(ctx, component, version);
  const seq = await transact(ctx, async () => {
    const [existing, configurations] = await Promise.all([readVersion(ctx, component, version), currentConfigurations(ctx)]);
    if (!existing.live) {
      throw new StrataError('VERSION_NOT_FOUND', `version ${JSON.stringify(version)} of component ${JSON.stringify(component)} not found`, { details: { component, version } });
    }
    const users = usersOf(configurations, component, version);
    if (users.length > 0) {
      throw new StrataError('IN_USE', `${component}:${version} is used by ${users.join(', ')}`, { details: { component, version, configurations: users } });
    }
    return { write: { subject, data: toJson({ component, version }), tombstone: true, rollup: true }, done: (written: number) => written };
  });
  // The tombstone has done its job once committed; removing it (and only up to it) keeps the ledger small.
  await ctx.jsm.streams.purge(ctx.layout.ledger.stream, { filter: subject, seq: seq + 1 }).catch(() => undefined);
}

/** Deletes every version of a component, all or nothing, under the rules of `Store.deleteComponent`. */
export async function deleteComponent(ctx: NatsContext, component: string): Promise<void> {
  const seq = await transact(ctx, async () => {
    const [versions, configurations] = await Promise.all([liveVersions(ctx, component), currentConfigurations(ctx)]);
    if (versions.length === 0) throw componentNotFound(component);
    const users = usersOf(configurations, component);
    if (users.length > 0) {
      throw new StrataError('IN_USE', `component ${component} is used by ${users.join(', ')}`, { details: { component, configurations: users } });
    }
    // One message deletes them all, atomically: versions older than a component tombstone are gone.
    return { write: { subject: ledgerSubject.component(ctx, component), data: toJson({ component }), tombstone: true, rollup: true }, done: (written: number) => written };
  });
  await purgeDeletedVersions(ctx, component, seq);
}

/** Removes the version messages a component tombstone at `seq` deleted (the tombstone stays). */
export async function purgeDeletedVersions(ctx: NatsContext, component: string, seq: number): Promise<void> {
  await ctx.jsm.streams.purge(ctx.layout.ledger.stream, { filter: ledgerSubject.componentVersions(ctx, component), seq }).catch(() => undefined);
}

/** Names of configurations whose current revision uses the component (or one version of it), sorted. */
function usersOf(configurations: { name: string; layers: { component: string; version: string }[] }[], component: string, version?: string): string[] {
  return configurations
    .filter((c) => c.layers.some((l) => l.component === component && (version === undefined || l.version === version)))
    .map((c) => c.name)
    .sort();
}

/** The error for a component without versions. */
function componentNotFound(component: string): StrataError {
  return new StrataError('COMPONENT_NOT_FOUND', `component ${JSON.stringify(component)} not found`, { details: { component } });
}
