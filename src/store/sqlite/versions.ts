/**
 * Components and their immutable versions. The IN_USE checks read the current layers of every
 * configuration inside the same transaction as the delete, so they are atomic with
 * `putConfiguration`.
 */
import { StrataError } from '../../core/errors.ts';
import type { ComponentSummary, ComponentVersion } from '../contract.ts';
import { findBlobRow } from './blob-rows.ts';
import type { Database } from './database.ts';
import { inTransaction } from './database.ts';
import { integer, nowIso, text, type Row } from './rows.ts';

const VERSION_COLUMNS = 'component, version, blob, size, created_at, created_by';

/** Adds a version under the rules of `Store.addVersion`. */
export function addVersion(
  database: Database,
  input: { component: string; version: string; blob: string; actor: string },
): ComponentVersion {
  return inTransaction(database, () => {
    const { component, version, blob } = input;
    if (findVersion(database, component, version)) {
      throw new StrataError('VERSION_EXISTS', `version ${JSON.stringify(version)} already exists`, { details: { component, version } });
    }
    const stored = findBlobRow(database, blob);
    if (stored === undefined) throw new StrataError('BLOB_NOT_FOUND', `blob ${blob} not found: upload it first`, { details: { sha256: blob } });
    const record: ComponentVersion = { component, version, blob, size: stored.size, createdAt: nowIso(), createdBy: input.actor };
    database
      .sql(`INSERT INTO versions (${VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`)
      .run(component, version, blob, record.size, record.createdAt, record.createdBy);
    return record;
  });
}

/** One version, or undefined. */
export function findVersion(database: Database, component: string, version: string): ComponentVersion | undefined {
  const row = database.sql(`SELECT ${VERSION_COLUMNS} FROM versions WHERE component = ? AND version = ?`).get(component, version);
  return row === undefined ? undefined : versionFromRow(row);
}

/** A component's versions, oldest first; COMPONENT_NOT_FOUND when it has none. */
export function listVersions(database: Database, component: string): ComponentVersion[] {
  const versions = database
    .sql(`SELECT ${VERSION_COLUMNS} FROM versions WHERE component = ? ORDER BY id`)
    .all(component)
    .map(versionFromRow);
  if (versions.length === 0) throw new StrataError('COMPONENT_NOT_FOUND', `component ${JSON.stringify(component)} not found`, { details: { component } });
  return versions;
}

/** Every component with its version count and latest version, sorted by name. */
export function listComponents(database: Database): ComponentSummary[] {
  return database
    .sql(
      `SELECT v.component, v.version, v.blob, v.size, v.created_at, v.created_by, counts.n AS version_count
       FROM (SELECT component, COUNT(*) AS n, MAX(id) AS latest FROM versions GROUP BY component) AS counts
       JOIN versions AS v ON v.id = counts.latest
       ORDER BY v.component`,
    )
    .all()
    .map((row) => ({ name: text(row, 'component'), versionCount: integer(row, 'version_count'), latest: versionFromRow(row) }));
}

/** Deletes one version under the rules of `Store.deleteVersion`. */
export function deleteVersion(database: Database, component: string, version: string): void {
  inTransaction(database, () => {
    if (!findVersion(database, component, version)) {
      throw new StrataError('VERSION_NOT_FOUND', `version ${JSON.stringify(version)} of component ${JSON.stringify(component)} not found`, { details: { component, version } });
    }
    const configurations = configurationsUsing(database, component, version);
    if (configurations.length > 0) {
      throw new StrataError('IN_USE', `${component}:${version} is used by ${configurations.join(', ')}`, {
        details: { component, version, configurations },
      });
    }
    database.sql('DELETE FROM versions WHERE component = ? AND version = ?').run(component, version);
  });
}

/** Deletes every version of a component, all or nothing, under the rules of `Store.deleteComponent`. */
export function deleteComponent(database: Database, component: string): void {
  inTransaction(database, () => {
    const count = integer(database.sql('SELECT COUNT(*) AS n FROM versions WHERE component = ?').get(component) ?? {}, 'n');
    if (count === 0) throw new StrataError('COMPONENT_NOT_FOUND', `component ${JSON.stringify(component)} not found`, { details: { component } });
    const configurations = configurationsUsing(database, component);
    if (configurations.length > 0) {
      throw new StrataError('IN_USE', `component ${component} is used by ${configurations.join(', ')}`, {
        details: { component, configurations },
      });
    }
    database.sql('DELETE FROM versions WHERE component = ?').run(component);
  });
}

/** Names of configurations whose current revision uses the component (or one version of it). */
function configurationsUsing(database: Database, component: string, version?: string): string[] {
  const rows =
    version === undefined
      ? database.sql('SELECT DISTINCT name FROM configuration_layers WHERE component = ? ORDER BY name').all(component)
      : database
          .sql('SELECT DISTINCT name FROM configuration_layers WHERE component = ? AND version = ? ORDER BY name')
          .all(component, version);
  return rows.map((row) => text(row, 'name'));
}

/** Converts a `versions` row to a ComponentVersion. */
function versionFromRow(row: Row): ComponentVersion {
  return {
    component: text(row, 'component'),
    version: text(row, 'version'),
    blob: text(row, 'blob'),
    size: integer(row, 'size'),
    createdAt: text(row, 'created_at'),
    createdBy: text(row, 'created_by'),
  };
}
