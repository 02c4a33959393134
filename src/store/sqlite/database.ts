/**
 * Opens the metadata database with the durability settings the Store contract relies on, and
 * provides the one transaction helper every read-check-write goes through.
 */
import { chmodSync, closeSync, openSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { applySchema } from './schema.ts';

/** The metadata database plus a cache of prepared statements. */
export interface Database {
  readonly db: DatabaseSync;
  /** A prepared statement for `text`, prepared once and reused. */
  sql(text: string): StatementSync;
}

/** Opens (creating if needed) the database file at `path`, readable by its owner only. */
export function openDatabase(path: string): Database {
  // Create the file ourselves so it is never world-readable, even for an instant.
  closeSync(openSync(path, 'a', 0o600));
  chmodSync(path, 0o600);
  const db = new DatabaseSync(path, { enableForeignKeyConstraints: true, timeout: 5000 });
  db.exec('PRAGMA journal_mode = WAL');
  // FULL makes every COMMIT durable in WAL mode too, which "a method that resolves" requires.
  db.exec('PRAGMA synchronous = FULL');
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('PRAGMA foreign_keys = ON');
  applySchema(db);
  const statements = new Map<string, StatementSync>();
  return {
    db,
    sql(text) {
      let statement = statements.get(text);
      if (statement === undefined) {
        statement = db.prepare(text);
        statements.set(text, statement);
      }
      return statement;
    },
  };
}

/**
 * Runs `work` inside `BEGIN IMMEDIATE … COMMIT`, rolling back if it throws. IMMEDIATE takes the
 * write lock up front, so the reads inside see exactly what the writes will be checked against.
 * `work` must be synchronous: an await inside would let other calls interleave with the transaction.
 */
export function inTransaction<T>(database: Database, work: () => T): T {
  const { db } = database;
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = work();
    if (result instanceof Promise) throw new Error('inTransaction work must be synchronous');
    db.exec('COMMIT');
    return result;
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}
