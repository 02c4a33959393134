/**
 * Configurations: revisions with compare-and-set, a kept history, and the store-wide event log
 * whose `seq` orders every write and delete. The event log is pruned to the latest event per
 * name as it is written, so it is always exactly the compacted replay a watcher needs.
 */
import { StrataError } from '../../core/errors.ts';
import type { Configuration, ConfigurationEvent, PutConfigurationInput, ResolvedLayer } from '../contract.ts';
import type { SqliteContext } from './context.ts';
import { inTransaction, type Database } from './database.ts';
import { integer, nowIso, optionalJson, optionalText, text, type Row } from './rows.ts';
import { findVersion } from './versions.ts';

const REVISION_COLUMNS = 'name, revision, seq, id, layers, settings, updated_at, updated_by, note';

/** The current revision of a configuration, or undefined. */
export function getConfiguration(database: Database, name: string): Configuration | undefined {
  const row = database
    .sql(
      `SELECT ${prefixed('r')} FROM configuration_heads AS h
       JOIN configuration_revisions AS r ON r.name = h.name AND r.revision = h.revision
       WHERE h.name = ?`,
    )
    .get(name);
  return row === undefined ? undefined : configurationFromRow(row);
}

/** The current revision of every configuration, sorted by name. */
export function listConfigurations(database: Database): Configuration[] {
  return database
    .sql(
      `SELECT ${prefixed('r')} FROM configuration_heads AS h
       JOIN configuration_revisions AS r ON r.name = h.name AND r.revision = h.revision
       ORDER BY h.name`,
    )
    .all()
    .map(configurationFromRow);
}

/** Every revision of a configuration, oldest first; CONFIGURATION_NOT_FOUND when absent. */
export function configurationHistory(database: Database, name: string): Configuration[] {
  const revisions = database
    .sql(`SELECT ${REVISION_COLUMNS} FROM configuration_revisions WHERE name = ? ORDER BY revision`)
    .all(name)
    .map(configurationFromRow);
  if (revisions.length === 0) throw notFound(name);
  return revisions;
}

/** Writes a new revision under the rules of `Store.putConfiguration`, then tells watchers. */
export function putConfiguration(ctx: SqliteContext, input: PutConfigurationInput): Configuration {
  const { database } = ctx;
  const configuration = inTransaction(database, () => {
    const current = currentRevision(database, input.name);
    checkExpected(input.name, input.expectedRevision, current);
    for (const layer of input.layers) checkLayer(database, layer);
    const seq = appendEvent(database, input.name, 'put');
    const written: Configuration = {
      name: input.name,
      revision: current + 1,
      seq,
      id: input.id,
      layers: input.layers,
      ...(input.settings === undefined ? {} : { settings: input.settings }),
      updatedAt: nowIso(),
      updatedBy: input.actor,
      ...(input.note === undefined ? {} : { note: input.note }),
    };
    database
      .sql(`INSERT INTO configuration_revisions (${REVISION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(
        written.name,
        written.revision,
        seq,
        written.id,
        JSON.stringify(written.layers),
        written.settings === undefined ? null : JSON.stringify(written.settings),
        written.updatedAt,
        written.updatedBy,
        written.note ?? null,
      );
    database
      .sql('INSERT INTO configuration_heads (name, revision) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET revision = excluded.revision')
      .run(written.name, written.revision);
    database.sql('DELETE FROM configuration_layers WHERE name = ?').run(written.name);
    const addLayer = database.sql('INSERT INTO configuration_layers (name, component, version) VALUES (?, ?, ?)');
    for (const layer of written.layers) addLayer.run(written.name, layer.component, layer.version);
    return written;
  });
  ctx.events.emit('event', { type: 'put', seq: configuration.seq, name: configuration.name, configuration });
  return configuration;
}

/** Appends imported revisions of one configuration as given, all or nothing (see `Store.importRecord`). */
export function importHistory(ctx: SqliteContext, revisions: Omit<Configuration, 'seq'>[]): void {
  const first = revisions[0];
  const last = revisions[revisions.length - 1];
  if (first === undefined || last === undefined) return;
  const { database } = ctx;
  const written = inTransaction(database, () => {
    const current = currentRevision(database, first.name);
    if (first.revision !== current + 1) {
      throw new StrataError('REVISION_CONFLICT', `configuration ${first.name} is at revision ${current}; the import starts at ${first.revision}`, {
        details: { name: first.name, expectedRevision: first.revision - 1, currentRevision: current },
      });
    }
    revisions.forEach((r, i) => {
      if (r.name !== first.name || r.revision !== first.revision + i) throw new StrataError('BAD_REQUEST', 'an imported history must be consecutive revisions of one configuration');
    });
    for (const layer of last.layers) checkLayer(database, layer);
    const out: Configuration[] = [];
    for (const r of revisions) {
      const seq = appendEvent(database, r.name, 'put');
      database
        .sql(`INSERT INTO configuration_revisions (${REVISION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(r.name, r.revision, seq, r.id, JSON.stringify(r.layers), r.settings === undefined ? null : JSON.stringify(r.settings), r.updatedAt, r.updatedBy, r.note ?? null);
      out.push({ ...r, seq });
    }
    database
      .sql('INSERT INTO configuration_heads (name, revision) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET revision = excluded.revision')
      .run(last.name, last.revision);
    database.sql('DELETE FROM configuration_layers WHERE name = ?').run(last.name);
    const addLayer = database.sql('INSERT INTO configuration_layers (name, component, version) VALUES (?, ?, ?)');
    for (const layer of last.layers) addLayer.run(last.name, layer.component, layer.version);
    return out;
  });
  for (const configuration of written) ctx.events.emit('event', { type: 'put', seq: configuration.seq, name: configuration.name, configuration });
}

/** Deletes a configuration and its history under the rules of `Store.deleteConfiguration`. */
export function deleteConfiguration(ctx: SqliteContext, name: string, options: { expectedRevision?: number }): void {
  const { database } = ctx;
  const seq = inTransaction(database, () => {
    const current = currentRevision(database, name);
    if (current === 0) throw notFound(name);
    if (options.expectedRevision !== undefined) checkExpected(name, options.expectedRevision, current);
    database.sql('DELETE FROM configuration_layers WHERE name = ?').run(name);
    database.sql('DELETE FROM configuration_heads WHERE name = ?').run(name);
    database.sql('DELETE FROM configuration_revisions WHERE name = ?').run(name);
    return appendEvent(database, name, 'delete');
  });
  ctx.events.emit('event', { type: 'delete', seq, name });
}

/**
 * The compacted replay for a watcher: the latest event of each configuration with
 * `seq > afterSeq`, in seq order. From 0 a reader has no state to remove, so deletions are left out.
 */
export function replayEvents(database: Database, afterSeq: number): ConfigurationEvent[] {
  return database
    .sql(
      `SELECT e.seq AS event_seq, e.name AS event_name, e.type, ${prefixed('r')}
       FROM configuration_events AS e LEFT JOIN configuration_revisions AS r ON r.seq = e.seq
       WHERE e.seq > ? AND (e.type = 'put' OR ? > 0)
       ORDER BY e.seq`,
    )
    .all(afterSeq, afterSeq)
    .map((row): ConfigurationEvent => {
      const seq = integer(row, 'event_seq');
      const name = text(row, 'event_name');
      return text(row, 'type') === 'put' ? { type: 'put', seq, name, configuration: configurationFromRow(row) } : { type: 'delete', seq, name };
    });
}

/** The current revision number of a configuration, 0 when it does not exist. */
function currentRevision(database: Database, name: string): number {
  const row = database.sql('SELECT revision FROM configuration_heads WHERE name = ?').get(name);
  return row === undefined ? 0 : integer(row, 'revision');
}

/** Compare-and-set: throws unless the caller read the current revision. */
function checkExpected(name: string, expected: number, current: number): void {
  if (expected === current) return;
  const details = { name, expectedRevision: expected, currentRevision: current };
  if (expected === 0) throw new StrataError('CONFIGURATION_EXISTS', `configuration ${JSON.stringify(name)} already exists`, { details });
  throw new StrataError('REVISION_CONFLICT', `configuration ${name} is at revision ${current}, not ${expected}`, { details });
}

/**
 * A layer must name a version that exists and still names the blob the caller resolved: a
 * version deleted and re-added with other bytes would otherwise leave the layer pointing at a
 * blob that sweep may remove.
 */
function checkLayer(database: Database, layer: ResolvedLayer): void {
  const stored = findVersion(database, layer.component, layer.version);
  if (stored !== undefined && stored.blob === layer.blob) return;
  const ref = `${layer.component}:${layer.version}`;
  throw new StrataError(
    'VERSION_NOT_FOUND',
    stored === undefined ? `${ref} does not exist` : `${ref} now names blob ${stored.blob}, not ${layer.blob}`,
    { details: { component: layer.component, version: layer.version } },
  );
}

/** Records an event and prunes the configuration's older ones; returns the new seq. */
function appendEvent(database: Database, name: string, type: ConfigurationEvent['type']): number {
  const seq = Number(database.sql('INSERT INTO configuration_events (name, type) VALUES (?, ?)').run(name, type).lastInsertRowid);
  database.sql('DELETE FROM configuration_events WHERE name = ? AND seq < ?').run(name, seq);
  return seq;
}

/** The revision columns qualified with a table alias. */
function prefixed(alias: string): string {
  return REVISION_COLUMNS.split(', ')
    .map((column) => `${alias}.${column}`)
    .join(', ');
}

/** Converts a `configuration_revisions` row to a Configuration, leaving absent options out. */
function configurationFromRow(row: Row): Configuration {
  const settings = optionalJson<Record<string, unknown>>(row, 'settings');
  const note = optionalText(row, 'note');
  return {
    name: text(row, 'name'),
    revision: integer(row, 'revision'),
    seq: integer(row, 'seq'),
    id: text(row, 'id'),
    layers: JSON.parse(text(row, 'layers')) as ResolvedLayer[],
    ...(settings === undefined ? {} : { settings }),
    updatedAt: text(row, 'updated_at'),
    updatedBy: text(row, 'updated_by'),
    ...(note === undefined ? {} : { note }),
  };
}

/** The error for a configuration that does not exist. */
function notFound(name: string): StrataError {
  return new StrataError('CONFIGURATION_NOT_FOUND', `configuration ${JSON.stringify(name)} not found`, { details: { name } });
}
