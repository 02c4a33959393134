/** Fleet orders: a bounded history, pruned by creation order; results kept in their own column. */
import { StrataError } from '../../core/errors.ts';
import type { HostResult } from '../../protocol/orders.ts';
import { ORDER_RETENTION, type OrderCounts, type OrderRecord } from '../contract.ts';
import { boundedResults } from '../order-limits.ts';
import { inTransaction, type Database } from './database.ts';
import { integer, nowIso, optionalJson, text, type Row } from './rows.ts';

/** Records a new order and prunes the oldest beyond `keep`. */
export function createOrder(
  database: Database,
  input: Omit<OrderRecord, 'createdAt' | 'finishedAt' | 'summary' | 'results'> & { createdAt?: string },
  options: { keep?: number } = {},
): OrderRecord {
  const keep = Math.max(1, Math.floor(options.keep ?? ORDER_RETENTION));
  const record: OrderRecord = { id: input.id, createdAt: input.createdAt ?? nowIso(), actor: input.actor, args: input.args, target: input.target, hosts: [...input.hosts] };
  return inTransaction(database, () => {
    if (database.sql('SELECT 1 FROM orders WHERE id = ?').get(record.id) !== undefined) {
      throw new StrataError('BAD_REQUEST', `order ${JSON.stringify(record.id)} already exists`, { details: { id: record.id } });
    }
    const seq = Number(database.sql('INSERT INTO orders (id, record) VALUES (?, ?)').run(record.id, JSON.stringify(record)).lastInsertRowid);
    database.sql('DELETE FROM orders WHERE seq <= ?').run(seq - keep);
    return record;
  });
}

/** Records an order's outcome once; a second call returns the first outcome. */
export function finishOrder(database: Database, id: string, outcome: { summary: OrderCounts; results: Record<string, HostResult>; finishedAt?: string }): OrderRecord {
  return inTransaction(database, () => {
    const current = getOrder(database, id);
    if (!current) throw new StrataError('ORDER_NOT_FOUND', `order ${JSON.stringify(id)} not found`, { details: { id } });
    if (current.finishedAt !== undefined) return current;
    const { results: _none, ...fields } = current;
    const record: OrderRecord = { ...fields, finishedAt: outcome.finishedAt ?? nowIso(), summary: { ...outcome.summary } };
    const results = boundedResults(outcome.results);
    database.sql('UPDATE orders SET record = ?, results = ? WHERE id = ?').run(JSON.stringify(record), JSON.stringify(results), id);
    return { ...record, results };
  });
}

/** One order with its results, or undefined. */
export function getOrder(database: Database, id: string): OrderRecord | undefined {
  const row = database.sql('SELECT record, results FROM orders WHERE id = ?').get(id);
  if (row === undefined) return undefined;
  const record = JSON.parse(text(row, 'record')) as OrderRecord;
  const results = optionalJson<Record<string, HostResult>>(row, 'results');
  return results === undefined ? record : { ...record, results };
}

/** Orders newest first, without results. */
export function listOrders(database: Database, options: { limit: number; before?: string }): OrderRecord[] {
  const limit = Math.max(0, Math.floor(options.limit));
  let beforeSeq = Number.MAX_SAFE_INTEGER;
  if (options.before !== undefined) {
    const row = database.sql('SELECT seq FROM orders WHERE id = ?').get(options.before);
    if (row === undefined) throw new StrataError('ORDER_NOT_FOUND', `order ${JSON.stringify(options.before)} not found`, { details: { id: options.before } });
    beforeSeq = integer(row, 'seq');
  }
  return database.sql('SELECT record FROM orders WHERE seq < ? ORDER BY seq DESC LIMIT ?').all(beforeSeq, limit).map((row: Row) => JSON.parse(text(row, 'record')) as OrderRecord);
}
