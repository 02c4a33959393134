/** Small named values the server keeps for itself, written at most once per key (KV create). */
import { token } from './codec.ts';
import type { NatsContext } from './context.ts';
import { createRecord, getRecord } from './kv-records.ts';

/** The value stored under `key`, or undefined. */
export async function getState(ctx: NatsContext, key: string): Promise<string | undefined> {
  return (await getRecord<string>(ctx.kv.state, token(key)))?.value;
}

/** Stores `value` unless `key` already has one; returns whichever value is stored afterwards. */
export async function putStateIfAbsent(ctx: NatsContext, key: string, value: string): Promise<string> {
  for (;;) {
    if ((await createRecord(ctx.kv.state, token(key), value)) !== undefined) return value;
    const stored = await getState(ctx, key);
    if (stored !== undefined) return stored;
  }
}

