/** Claims of signed agent writes already accepted (see Store.claimOnce), expired rows purged as it goes. */
import { assertClaim } from '../contract.ts';
import { inTransaction, type Database } from './database.ts';

/** Expired claims deleted per claim made, so the table stays near what the last ten minutes claimed. */
const PURGE_BATCH = 16;

/** Records `key` until `now + ttlMs`; false when it is recorded and not yet expired. */
export function claimOnce(database: Database, key: string, ttlMs: number, now = Date.now()): boolean {
  assertClaim(key, ttlMs);
  // One transaction, one durable commit per claim.
  return inTransaction(database, () => {
    database.sql('DELETE FROM claims WHERE key IN (SELECT key FROM claims WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)').run(now, PURGE_BATCH);
    const result = database.sql('INSERT INTO claims (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE claims.expires_at <= ?').run(key, now + ttlMs, now);
    return Number(result.changes) === 1;
  });
}
