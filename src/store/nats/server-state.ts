/** Small named values the server keeps for itself, written at most once per key (KV create), and claims (Store.claimOnce). */
import { assertClaim } from '../contract.ts';
import { token, untoken } from './codec.ts';
import type { NatsContext } from './context.ts';
import { allRecords, createRecord, getRecord } from './kv-records.ts';

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


/** Every state entry, by key. */
export async function listState(ctx: NatsContext): Promise<Record<string, string>> {
  const entries = await allRecords<string>(ctx, ctx.layout.buckets.state);
  return Object.fromEntries(entries.map((e) => [untoken(e.key), e.value] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Records `key` in the claims bucket; false when it is there already. The bucket forgets each
 * entry CLAIM_MAX_TTL_MS after it was written, at least as long as any `ttlMs` asks.
 */
export async function claimOnce(ctx: NatsContext, key: string, ttlMs: number): Promise<boolean> {
  assertClaim(key, ttlMs);
  return (await createRecord(ctx.kv.claims, key, 1)) !== undefined;
}
