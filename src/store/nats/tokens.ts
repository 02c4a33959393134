/** API and join token records in a KV bucket, keyed by id; a position kept from creation orders them oldest first. */
import { StrataError } from '../../core/errors.ts';
import type { TokenRecord } from '../contract.ts';
import { token } from './codec.ts';
import type { NatsContext } from './context.ts';
import { allRecords, createRecord, getRecord, updateRecord } from './kv-records.ts';

/** A token as stored: the record, and once rewritten, the revision it was created at. */
interface StoredToken {
  record: TokenRecord;
  position?: number;
}

/** Stores a new token; BAD_REQUEST when the id is taken. */
export async function createToken(ctx: NatsContext, record: TokenRecord): Promise<void> {
  const created = await createRecord(ctx.kv.tokens, token(record.id), { record } satisfies StoredToken);
  if (created === undefined) throw new StrataError('BAD_REQUEST', `a token with id ${record.id} already exists`, { details: { id: record.id } });
}

/** A token by id, revoked or not. */
export async function getToken(ctx: NatsContext, id: string): Promise<TokenRecord | undefined> {
  return (await getRecord<StoredToken>(ctx.kv.tokens, token(id)))?.value.record;
}

/** Every token, oldest first. */
export async function listTokens(ctx: NatsContext): Promise<TokenRecord[]> {
  const entries = await allRecords<StoredToken>(ctx, ctx.layout.buckets.tokens);
  return entries
    .map((e) => ({ record: e.value.record, position: e.value.position ?? e.revision }))
    .sort((a, b) => a.position - b.position)
    .map((e) => e.record);
}

/** Marks a token revoked at `at`, keeping an earlier revocation; TOKEN_NOT_FOUND when absent. */
export async function revokeToken(ctx: NatsContext, id: string, at: string): Promise<TokenRecord> {
  for (;;) {
    const stored = await getRecord<StoredToken>(ctx.kv.tokens, token(id));
    if (stored === undefined) throw new StrataError('TOKEN_NOT_FOUND', `token ${id} not found`, { details: { id } });
    if (stored.value.record.revokedAt !== undefined) return stored.value.record;
    const revoked: TokenRecord = { ...stored.value.record, revokedAt: at };
    const position = stored.value.position ?? stored.revision;
    if ((await updateRecord(ctx.kv.tokens, token(id), { record: revoked, position } satisfies StoredToken, stored.revision)) !== undefined) return revoked;
  }
}
