/**
 * How agents prove who they are: once with a join token (enrollment), then on every request with
 * an Ed25519 signature of the request by their own key (`StrataAgent <name>.<ms>.<sig>`).
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { StrataError } from '../core/errors.ts';
import { parseToken, secretMatches, tokenUnusableReason } from '../core/tokens.ts';
import { AGENT_CLOCK_SKEW_MS, agentSigningInput } from '../protocol/agent.ts';
import type { AgentRecord, Store, TokenRecord } from '../store/contract.ts';

/** An authenticated agent. */
export interface AgentPrincipal {
  name: string;
  /** The record as read while authenticating the request. */
  record: AgentRecord;
  /** How the audit log names this caller. */
  actor: string;
}

// The name may contain dots; the timestamp and the base64url signature cannot, so split from the right.
const AGENT_AUTHORIZATION = /^StrataAgent\s+(\S+)\.(\d{1,16})\.([A-Za-z0-9_-]{1,256})$/;

/** True when an Authorization header uses the agent scheme. */
export function isAgentAuthorization(header: string | undefined): boolean {
  return header !== undefined && /^StrataAgent\s/i.test(header);
}

/** Parses an Ed25519 public key in SPKI PEM; throws BAD_REQUEST for anything else. */
export function parseAgentPublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new StrataError('BAD_REQUEST', 'publicKey is not a PEM public key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new StrataError('BAD_REQUEST', `publicKey is an ${key.asymmetricKeyType ?? 'unknown'} key; agents use Ed25519`);
  return key;
}

/** True when two PEM public keys are the same key, however they are wrapped. */
export function samePublicKey(a: string, b: string): boolean {
  try {
    const der = (pem: string): Buffer => createPublicKey(pem).export({ format: 'der', type: 'spki' });
    return der(a).equals(der(b));
  } catch {
    return false;
  }
}

// Parsing a PEM for every request is wasteful; enrolled keys rarely change, so remember them.
const keyCache = new Map<string, KeyObject>();
const KEY_CACHE_LIMIT = 20_000;

/** The KeyObject for a stored PEM, cached. */
function cachedKey(pem: string): KeyObject {
  let key = keyCache.get(pem);
  if (key === undefined) {
    key = createPublicKey(pem);
    if (keyCache.size >= KEY_CACHE_LIMIT) keyCache.clear();
    keyCache.set(pem, key);
  }
  return key;
}

/**
 * Checks a `StrataAgent` Authorization header against the request's method and path (with its
 * query, exactly as sent). Throws UNAUTHENTICATED saying why: malformed, stale timestamp,
 * unknown agent, bad signature, or revoked.
 */
export async function authenticateAgent(store: Store, header: string | undefined, method: string, path: string, now = Date.now()): Promise<AgentPrincipal> {
  if (!header) throw new StrataError('UNAUTHENTICATED', 'missing agent signature: send Authorization: StrataAgent <name>.<unix ms>.<signature>');
  const match = AGENT_AUTHORIZATION.exec(header.trim());
  if (!match) throw new StrataError('UNAUTHENTICATED', 'malformed agent authorization: expected StrataAgent <name>.<unix ms>.<base64url signature>');
  const [, name, ms, signature] = match as unknown as [string, string, string, string];
  const timestamp = Number(ms);
  if (Math.abs(now - timestamp) > AGENT_CLOCK_SKEW_MS) {
    throw new StrataError('UNAUTHENTICATED', `agent signature timestamp is ${Math.round((timestamp - now) / 1000)}s from the server's clock (allowed: ±${AGENT_CLOCK_SKEW_MS / 1000}s); check the agent's clock`);
  }
  const record = await store.getAgent(name);
  if (!record?.publicKey) throw new StrataError('UNAUTHENTICATED', `agent ${JSON.stringify(name)} is not enrolled`);
  const input = Buffer.from(agentSigningInput(name, timestamp, method, path));
  const signatureBytes = Buffer.from(signature, 'base64url');
  let valid = false;
  try {
    valid = signatureBytes.length === 64 && verify(null, input, cachedKey(record.publicKey), signatureBytes);
  } catch {
    valid = false;
  }
  if (!valid) throw new StrataError('UNAUTHENTICATED', `invalid signature for agent ${JSON.stringify(name)}`);
  // Checked after the signature so that only the agent itself learns that it was revoked.
  if (record.revokedAt) throw new StrataError('UNAUTHENTICATED', `agent ${JSON.stringify(name)} is revoked`);
  return { name, record, actor: `agent:${name}` };
}

/**
 * Checks the join token of an enrollment (`Authorization: Bearer SJ1.…`): known, secret
 * matching in constant time, not revoked or expired, and made for this server's CA.
 */
export async function authenticateJoinToken(store: Store, header: string | undefined, caFingerprint: string | undefined, now = new Date()): Promise<TokenRecord> {
  if (!header) throw new StrataError('UNAUTHENTICATED', 'missing join token: send Authorization: Bearer <join token>');
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  const parsed = match ? parseToken(match[1]!) : undefined;
  if (!parsed || parsed.kind !== 'join') throw new StrataError('UNAUTHENTICATED', 'malformed join token: it looks like SJ1.<CA fingerprint>.<id>_<secret>');
  const record = await store.getToken(parsed.id);
  if (!record || record.kind !== 'join' || !secretMatches(record, parsed.secret)) throw new StrataError('UNAUTHENTICATED', 'invalid join token');
  const unusable = tokenUnusableReason(record, now);
  if (unusable) throw new StrataError('UNAUTHENTICATED', `join token ${record.id} is ${unusable}; ask an admin for a new one (strata join-token create)`);
  if (caFingerprint && parsed.caFingerprint !== caFingerprint) throw new StrataError('UNAUTHENTICATED', "the join token was made for another server CA than this server's");
  return record;
}
