/** Selector assignments: which configurations agents with matching labels track. */
import type { Assignment } from '../contract.ts';
import { inTransaction, type Database } from './database.ts';
import { nowIso, text, type Row } from './rows.ts';

/** Adds an assignment, or returns the stored one unchanged when it exists. */
export function putAssignment(database: Database, input: { configuration: string; selector: string; actor: string }): Assignment {
  return inTransaction(database, () => {
    database
      .sql('INSERT INTO assignments (configuration, selector, created_at, created_by) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
      .run(input.configuration, input.selector, nowIso(), input.actor);
    const row = database.sql('SELECT * FROM assignments WHERE configuration = ? AND selector = ?').get(input.configuration, input.selector);
    return assignmentFromRow(row!);
  });
}

/** Removes an assignment; false when absent. */
export function deleteAssignment(database: Database, configuration: string, selector: string): boolean {
  const result = database.sql('DELETE FROM assignments WHERE configuration = ? AND selector = ?').run(configuration, selector);
  return Number(result.changes) > 0;
}

/** Every assignment, sorted by configuration, then selector. */
export function listAssignments(database: Database): Assignment[] {
  return database.sql('SELECT * FROM assignments ORDER BY configuration, selector').all().map(assignmentFromRow);
}

/** Converts an `assignments` row to an Assignment. */
function assignmentFromRow(row: Row): Assignment {
  return { configuration: text(row, 'configuration'), selector: text(row, 'selector'), createdAt: text(row, 'created_at'), createdBy: text(row, 'created_by') };
}
