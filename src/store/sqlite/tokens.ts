/** API and join token records; only secret hashes are ever stored (the caller hashes). */
import { StrataError } from '../../core/errors.ts';
import type { TokenRecord } from '../contract.ts';
import { inTransaction, type Database } from './database.ts';
import { text } from './rows.ts';

/** Stores a new token; BAD_REQUEST when the id is taken. */
export function createToken(database: Database, record: TokenRecord): void {
  inTransaction(database, () => {
    if (database.sql('SELECT 1 FROM tokens WHERE id = ?').get(record.id)) {
      throw new StrataError('BAD_REQUEST', `a token with id ${record.id} already exists`, { details: { id: record.id } });
    }
    database.sql('INSERT INTO tokens (id, record) VALUES (?, ?)').run(record.id, JSON.stringify(record));
  });
}

/** A token by id, revoked or not. */
export function getToken(database: Database, id: string): TokenRecord | undefined {
  const row = database.sql('SELECT record FROM tokens WHERE id = ?').get(id);
  return row === undefined ? undefined : (JSON.parse(text(row, 'record')) as TokenRecord);
}

/** Every token, oldest first. */
export function listTokens(database: Database): TokenRecord[] {
  return database
    .sql('SELECT record FROM tokens ORDER BY position')
    .all()
    .map((row) => JSON.parse(text(row, 'record')) as TokenRecord);
}

/** Marks a token revoked at `at`, keeping an earlier revocation; TOKEN_NOT_FOUND when absent. */
export function revokeToken(database: Database, id: string, at: string): TokenRecord {
  return inTransaction(database, () => {
    const record = getToken(database, id);
    if (record === undefined) throw new StrataError('TOKEN_NOT_FOUND', `token ${id} not found`, { details: { id } });
    if (record.revokedAt !== undefined) return record;
    const revoked: TokenRecord = { ...record, revokedAt: at };
    database.sql('UPDATE tokens SET record = ? WHERE id = ?').run(JSON.stringify(revoked), id);
    return revoked;
  });
}
