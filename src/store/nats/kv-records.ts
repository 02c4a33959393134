/**
 * JSON records in JetStream KV buckets, keyed by encoded names. Every read-modify-write uses the
 * entry's revision for compare-and-set (`create` for "must not exist", `update` for "unchanged
 * since read"); listing reads the bucket's stream through one consumer instead of a get per key.
 */
import type { KV } from '@nats-io/kv';
import { fromJson, isWrongLastSequence, storageError, toJson } from './codec.ts';
import type { NatsContext } from './context.ts';
import { lastPerSubject } from './stream-reads.ts';

/** A record and the KV revision it was read at. */
export interface Versioned<T> {
  value: T;
  revision: number;
}

/** The record under `key`, or undefined when absent or deleted. */
export async function getRecord<T>(kv: KV, key: string): Promise<Versioned<T> | undefined> {
  const entry = await kv.get(key);
  if (entry === null || entry.operation !== 'PUT') return undefined;
  return { value: fromJson<T>(entry.value), revision: entry.revision };
}

/** Writes `value` only if `key` has no record; returns the new revision, or undefined when one exists. */
export async function createRecord(kv: KV, key: string, value: unknown): Promise<number | undefined> {
  try {
    return await kv.create(key, toJson(value));
  } catch (error) {
    if (isWrongLastSequence(error) || /key exists/i.test(String((error as Error).message))) return undefined;
    throw storageError(error);
  }
}

/** Writes `value` only if `key` is still at `revision`; returns the new revision, or undefined when it moved. */
export async function updateRecord(kv: KV, key: string, value: unknown, revision: number): Promise<number | undefined> {
  try {
    return await kv.update(key, toJson(value), revision);
  } catch (error) {
    if (isWrongLastSequence(error)) return undefined;
    throw storageError(error);
  }
}

/** Writes `value` unconditionally. */
export async function putRecord(kv: KV, key: string, value: unknown): Promise<number> {
  try {
    return await kv.put(key, toJson(value));
  } catch (error) {
    throw storageError(error);
  }
}

/** Deletes `key` if it is still at `revision`; false when it moved meanwhile. */
export async function deleteRecord(kv: KV, key: string, revision: number): Promise<boolean> {
  try {
    await kv.delete(key, { previousSeq: revision });
    return true;
  } catch (error) {
    if (isWrongLastSequence(error)) return false;
    throw error;
  }
}

/** Every live record of a bucket with its key and revision, in the order they were last written. */
export async function allRecords<T>(ctx: NatsContext, bucket: string): Promise<(Versioned<T> & { key: string })[]> {
  const prefix = `$KV.${bucket}.`;
  const messages = await lastPerSubject(ctx, `KV_${bucket}`, `${prefix}>`);
  return messages
    .filter((m) => {
      const op = m.header?.get('KV-Operation');
      return op !== 'DEL' && op !== 'PURGE';
    })
    .map((m) => ({ key: m.subject.slice(prefix.length), value: fromJson<T>(m.data), revision: m.seq }));
}
