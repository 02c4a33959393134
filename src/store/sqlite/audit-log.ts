/** The append-only audit log; `seq` comes from AUTOINCREMENT so it never goes backwards. */
import type { AuditEntry } from '../contract.ts';
import { inTransaction, type Database } from './database.ts';
import { integer, nowIso, optionalJson, text, type Row } from './rows.ts';

/** Appends an entry, assigning its seq and, if absent, its time. */
export function appendAudit(database: Database, entry: Omit<AuditEntry, 'seq' | 'at'> & { at?: string }): AuditEntry {
  return inTransaction(database, () => {
    const at = entry.at ?? nowIso();
    const result = database
      .sql('INSERT INTO audit (at, actor, action, target, result, details) VALUES (?, ?, ?, ?, ?, ?)')
      .run(at, entry.actor, entry.action, entry.target, entry.result, entry.details === undefined ? null : JSON.stringify(entry.details));
    const written: AuditEntry = {
      seq: Number(result.lastInsertRowid),
      at,
      actor: entry.actor,
      action: entry.action,
      target: entry.target,
      result: entry.result,
    };
    if (entry.details !== undefined) written.details = entry.details;
    return written;
  });
}

/** Entries after `afterSeq`, oldest first, at most `limit`: the first ones, or the last ones when `newest`. */
export function listAudit(database: Database, options: { afterSeq?: number; limit: number; newest?: boolean }): AuditEntry[] {
  const afterSeq = options.afterSeq ?? 0;
  const limit = Math.max(0, Math.floor(options.limit));
  if (options.newest) {
    const rows = database.sql('SELECT * FROM audit WHERE seq > ? ORDER BY seq DESC LIMIT ?').all(afterSeq, limit);
    return rows.map(auditFromRow).reverse();
  }
  return database.sql('SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, limit).map(auditFromRow);
}

/** Converts an `audit` row to an AuditEntry. */
function auditFromRow(row: Row): AuditEntry {
  const entry: AuditEntry = {
    seq: integer(row, 'seq'),
    at: text(row, 'at'),
    actor: text(row, 'actor'),
    action: text(row, 'action'),
    target: text(row, 'target'),
    result: text(row, 'result'),
  };
  const details = optionalJson<Record<string, unknown>>(row, 'details');
  if (details !== undefined) entry.details = details;
  return entry;
}
