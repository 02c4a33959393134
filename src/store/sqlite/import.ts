/** `importRecord` on SQLite: records written as given, each kind in one transaction. */
import { StrataError } from '../../core/errors.ts';
import type { ImportRecord } from '../contract.ts';
import { findBlobRow } from './blob-rows.ts';
import { importHistory } from './configurations.ts';
import type { SqliteContext } from './context.ts';
import { inTransaction } from './database.ts';
import { integer } from './rows.ts';
import { findVersion } from './versions.ts';

/** Writes one imported record under the rules of `Store.importRecord`. */
export function importRecord(ctx: SqliteContext, record: ImportRecord): void {
  const { database } = ctx;
  switch (record.kind) {
    case 'version': {
      const v = record.version;
      inTransaction(database, () => {
        if (findVersion(database, v.component, v.version)) throw new StrataError('VERSION_EXISTS', `version ${JSON.stringify(v.version)} already exists`, { details: { component: v.component, version: v.version } });
        const blob = findBlobRow(database, v.blob);
        if (blob === undefined) throw new StrataError('BLOB_NOT_FOUND', `blob ${v.blob} not found: upload it first`, { details: { sha256: v.blob } });
        database
          .sql('INSERT INTO versions (component, version, blob, size, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)')
          .run(v.component, v.version, v.blob, blob.size, v.createdAt, v.createdBy);
      });
      return;
    }
    case 'history':
      importHistory(ctx, record.revisions);
      return;
    case 'agent': {
      const { revision, ...fields } = record.agent;
      inTransaction(database, () => {
        const row = database.sql('SELECT revision FROM agents WHERE name = ?').get(fields.name);
        if (row !== undefined) {
          throw new StrataError('REVISION_CONFLICT', `agent ${fields.name} already exists`, { details: { name: fields.name, expectedRevision: 0, currentRevision: integer(row, 'revision') } });
        }
        database.sql('INSERT INTO agents (name, revision, record) VALUES (?, ?, ?)').run(fields.name, revision, JSON.stringify(fields));
      });
      return;
    }
    case 'assignment': {
      const a = record.assignment;
      database
        .sql('INSERT INTO assignments (configuration, selector, created_at, created_by) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
        .run(a.configuration, a.selector, a.createdAt, a.createdBy);
      return;
    }
    case 'group': {
      const g = record.group;
      const stored = { name: g.name, ...(g.hosts === undefined ? {} : { hosts: [...g.hosts] }), ...(g.selector === undefined ? {} : { selector: g.selector }), updatedAt: g.updatedAt, updatedBy: g.updatedBy };
      database.sql('INSERT INTO groups (name, record) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET record = excluded.record').run(g.name, JSON.stringify(stored));
      return;
    }
  }
}
