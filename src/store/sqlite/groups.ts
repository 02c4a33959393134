/** Host groups: named order targets, a list of agents or a label selector. */
import type { GroupRecord } from '../contract.ts';
import type { Database } from './database.ts';
import { nowIso, text, type Row } from './rows.ts';

/** Creates or replaces a group. */
export function putGroup(database: Database, input: { name: string; hosts?: string[]; selector?: string; actor: string }): GroupRecord {
  const record: GroupRecord = {
    name: input.name,
    ...(input.hosts === undefined ? {} : { hosts: [...input.hosts] }),
    ...(input.selector === undefined ? {} : { selector: input.selector }),
    updatedAt: nowIso(), updatedBy: input.actor,
  };
  database.sql('INSERT INTO groups (name, record) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET record = excluded.record').run(input.name, JSON.stringify(record));
  return record;
}

/** A group, or undefined. */
export function getGroup(database: Database, name: string): GroupRecord | undefined {
  const row = database.sql('SELECT record FROM groups WHERE name = ?').get(name);
  return row === undefined ? undefined : groupFromRow(row);
}

/** Every group, sorted by name. */
export function listGroups(database: Database): GroupRecord[] {
  return database.sql('SELECT record FROM groups ORDER BY name').all().map(groupFromRow);
}

/** Removes a group; false when absent. */
export function deleteGroup(database: Database, name: string): boolean {
  return Number(database.sql('DELETE FROM groups WHERE name = ?').run(name).changes) > 0;
}

/** Converts a `groups` row to a GroupRecord. */
function groupFromRow(row: Row): GroupRecord {
  return JSON.parse(text(row, 'record')) as GroupRecord;
}
