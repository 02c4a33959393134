/**
 * Configurations: revisions with compare-and-set, their history, and deletion. A write is a
 * ledger transaction, so the layer checks and the revision commit together: a concurrent
 * deleteVersion either commits first (and the write sees the version gone) or loses its race.
 */
import { StrataError } from '../../core/errors.ts';
import type { Configuration, PutConfigurationInput, ResolvedLayer } from '../contract.ts';
import { isTombstone, nowIso, toJson } from './codec.ts';
import { configurationFrom, currentConfigurations, readHead, type StoredRevision } from './configuration-reads.ts';
import type { NatsContext } from './context.ts';
import { appendLedger, ledgerSubject, transact } from './ledger.ts';
import { subjectHistory } from './stream-reads.ts';
import { readVersion } from './versions.ts';

/** The current revision of a configuration, or undefined. */
export async function getConfiguration(ctx: NatsContext, name: string): Promise<Configuration | undefined> {
  return (await readHead(ctx, name)).current;
}

/** The current revision of every configuration, sorted by name. */
export async function listConfigurations(ctx: NatsContext): Promise<Configuration[]> {
  return (await currentConfigurations(ctx)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Every revision since the configuration was (re)created, oldest first; CONFIGURATION_NOT_FOUND when absent. */
export async function configurationHistory(ctx: NatsContext, name: string): Promise<Configuration[]> {
  const messages = await subjectHistory(ctx, ctx.layout.ledger.stream, ledgerSubject.configuration(ctx, name));
  const lastTombstone = messages.findLastIndex((m) => isTombstone(m));
  const revisions = messages.slice(lastTombstone + 1).map(configurationFrom);
  if (revisions.length === 0) throw notFound(name);
  return revisions;
}

/** Writes a new revision under the rules of `Store.putConfiguration`. */
export function putConfiguration(ctx: NatsContext, input: PutConfigurationInput): Promise<Configuration> {
  return transact(ctx, async () => {
    const [head, ...layers] = await Promise.all([readHead(ctx, input.name), ...input.layers.map((layer) => checkLayer(ctx, layer))]);
    const current = head.current?.revision ?? 0;
    checkExpected(input.name, input.expectedRevision, current);
    const missing = layers.find((problem) => problem !== undefined);
    if (missing) throw missing;
    const stored: StoredRevision = {
      name: input.name,
      revision: current + 1,
      id: input.id,
      layers: input.layers,
      ...(input.settings === undefined ? {} : { settings: input.settings }),
      updatedAt: nowIso(),
      updatedBy: input.actor,
      ...(input.note === undefined ? {} : { note: input.note }),
    };
    return {
      write: { subject: ledgerSubject.configuration(ctx, input.name), data: toJson(stored), expectedSubjectSeq: head.seq },
      done: (seq: number): Configuration => ({ ...stored, seq, ...(stored.settings === undefined ? {} : { settings: stored.settings }) }),
    };
  }).then(normalize);
}

/** Deletes a configuration and its history under the rules of `Store.deleteConfiguration`. */
export async function deleteConfiguration(ctx: NatsContext, name: string, options: { expectedRevision?: number }): Promise<void> {
  for (;;) {
    const head = await readHead(ctx, name);
    if (head.current === undefined) throw notFound(name);
    if (options.expectedRevision !== undefined) checkExpected(name, options.expectedRevision, head.current.revision);
    try {
      // A tombstone that rolls up the subject: history and deletion are one atomic message.
      await appendLedger(ctx, { subject: ledgerSubject.configuration(ctx, name), data: toJson({ name }), tombstone: true, rollup: true, expectedSubjectSeq: head.seq });
      return;
    } catch (error) {
      // Someone wrote in between: decide again against what is there now.
      if (!/wrong last sequence/i.test(String((error as Error).message))) throw error;
    }
  }
}

/** Compare-and-set: throws unless the caller read the current revision. */
function checkExpected(name: string, expected: number, current: number): void {
  if (expected === current) return;
  const details = { name, expectedRevision: expected, currentRevision: current };
  if (expected === 0) throw new StrataError('CONFIGURATION_EXISTS', `configuration ${JSON.stringify(name)} already exists`, { details });
  throw new StrataError('REVISION_CONFLICT', `configuration ${name} is at revision ${current}, not ${expected}`, { details });
}

/** The refusal for a layer whose version is gone or names other bytes now, or undefined when it is fine. */
async function checkLayer(ctx: NatsContext, layer: ResolvedLayer): Promise<StrataError | undefined> {
  const stored = (await readVersion(ctx, layer.component, layer.version)).live?.version;
  if (stored !== undefined && stored.blob === layer.blob) return undefined;
  const ref = `${layer.component}:${layer.version}`;
  return new StrataError(
    'VERSION_NOT_FOUND',
    stored === undefined ? `${ref} does not exist` : `${ref} now names blob ${stored.blob}, not ${layer.blob}`,
    { details: { component: layer.component, version: layer.version } },
  );
}

/** A written revision in the same shape a read returns (absent options left out). */
function normalize(configuration: Configuration): Configuration {
  const { name, revision, seq, id, layers, settings, updatedAt, updatedBy, note } = configuration;
  return { name, revision, seq, id, layers, ...(settings === undefined ? {} : { settings }), updatedAt, updatedBy, ...(note === undefined ? {} : { note }) };
}

/** The error for a configuration that does not exist. */
function notFound(name: string): StrataError {
  return new StrataError('CONFIGURATION_NOT_FOUND', `configuration ${JSON.stringify(name)} not found`, { details: { name } });
}
