/** Small named values the server keeps for itself, written at most once per key. */
import { inTransaction, type Database } from './database.ts';
import { text } from './rows.ts';

/** The value stored under `key`, or undefined. */
export function getState(database: Database, key: string): string | undefined {
  const row = database.sql('SELECT value FROM state WHERE key = ?').get(key);
  return row === undefined ? undefined : text(row, 'value');
}

/** Stores `value` unless `key` already has one; returns whichever value is stored afterwards. */
export function putStateIfAbsent(database: Database, key: string, value: string): string {
  return inTransaction(database, () => {
    database.sql('INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING').run(key, value);
    const stored = getState(database, key);
    if (stored === undefined) throw new Error(`state ${key} vanished inside its own transaction`);
    return stored;
  });
}

/** Every state entry, by key. */
export function listState(database: Database): Record<string, string> {
  return Object.fromEntries(database.sql('SELECT key, value FROM state ORDER BY key').all().map((row) => [text(row, 'key'), text(row, 'value')]));
}
