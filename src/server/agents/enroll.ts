/**
 * Enrollment: registers an agent's public key under its name. A name held by a live agent with
 * another key is refused (AGENT_EXISTS); the same key again is an idempotent success that
 * refreshes labels, tracks and inventory; a revoked agent's name starts a fresh record, but never
 * with the key that was revoked (whoever holds it must not win the name back with a join token).
 */
import { isStrataError, StrataError } from '../../core/errors.ts';
import type { EnrollRequest } from '../../protocol/agent.ts';
import type { AgentRecord, Store } from '../../store/contract.ts';
import { samePublicKey } from '../agent-auth.ts';

const CAS_ATTEMPTS = 5;

/** Writes the enrollment; `created` is false when the agent was already enrolled with this key. */
export async function enrollAgent(store: Store, request: EnrollRequest, joinTokenId: string, now = new Date()): Promise<{ record: AgentRecord; created: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const existing = await store.getAgent(request.name);
    try {
      if (existing && !existing.revokedAt) {
        if (!existing.publicKey || !samePublicKey(existing.publicKey, request.publicKey)) {
          throw new StrataError('AGENT_EXISTS', `agent ${JSON.stringify(request.name)} is already enrolled with another key; revoke it first (strata agents revoke ${request.name})`, { details: { name: request.name } });
        }
        const { revision, ...fields } = existing;
        const refreshed = { ...fields, labels: request.labels, tracks: request.tracks, ...(request.inventory ? { inventory: request.inventory } : {}) };
        return { record: await store.putAgent(refreshed, revision), created: false };
      }
      if (existing?.revokedAt && existing.publicKey && samePublicKey(existing.publicKey, request.publicKey)) {
        throw new StrataError('FORBIDDEN', `agent ${JSON.stringify(request.name)} was revoked with this key; enroll with a new key (remove the agent's identity.json)`, { details: { name: request.name } });
      }
      const record: Omit<AgentRecord, 'revision'> = {
        name: request.name, labels: request.labels, tracks: request.tracks, publicKey: request.publicKey,
        enrolledAt: now.toISOString(), joinTokenId, ...(request.inventory ? { inventory: request.inventory } : {}),
      };
      return { record: await store.putAgent(record, existing?.revision ?? 0), created: true };
    } catch (error) {
      if (!isStrataError(error, 'REVISION_CONFLICT') || attempt >= CAS_ATTEMPTS) throw error;
    }
  }
}
