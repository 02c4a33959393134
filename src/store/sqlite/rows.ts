/**
 * Typed access to node:sqlite result rows, whose columns are typed as any SQL value; a wrong
 * type means the schema and the code disagree, which is a bug worth failing loudly on.
 */
import type { SQLOutputValue } from 'node:sqlite';

/** A result row as node:sqlite returns it. */
export type Row = Record<string, SQLOutputValue>;

/** A TEXT column that must not be NULL. */
export function text(row: Row, column: string): string {
  const value = row[column];
  if (typeof value !== 'string') throw new TypeError(`column ${column} is not text`);
  return value;
}

/** A TEXT column that may be NULL (NULL becomes undefined). */
export function optionalText(row: Row, column: string): string | undefined {
  const value = row[column];
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'string') throw new TypeError(`column ${column} is not text`);
  return value;
}

/** An INTEGER column that must not be NULL. */
export function integer(row: Row, column: string): number {
  const value = row[column];
  if (typeof value === 'bigint') return Number(value);
  if (typeof value !== 'number') throw new TypeError(`column ${column} is not an integer`);
  return value;
}

/** A JSON-encoded TEXT column that may be NULL. */
export function optionalJson<T>(row: Row, column: string): T | undefined {
  const value = optionalText(row, column);
  return value === undefined ? undefined : (JSON.parse(value) as T);
}

/** The ISO 8601 UTC time with milliseconds that the contract uses for every timestamp. */
export function nowIso(): string {
  return new Date().toISOString();
}
