/**
 * How agents prove who they are: once with a join token (enrollment), then on every request with
 * an Ed25519 signature of the request by their own key (`StrataAgent <name>.<ms>.<sig>`).
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { Transform } from 'node:stream';
import { StrataError } from '../core/errors.ts';
import { parseToken, secretMatches, tokenUnusableReason } from '../core/tokens.ts';
import { AGENT_BODY_HASH_HEADER, AGENT_CLOCK_SKEW_MS, agentSigningInput, agentSigningInputV1, EMPTY_BODY_SHA256 } from '../protocol/agent.ts';
import { CLAIM_MAX_TTL_MS, type AgentRecord, type Store, type TokenRecord } from '../store/contract.ts';

/** An authenticated agent. */
export interface AgentPrincipal {
  name: string;
  /** The record as read while authenticating the request. */
  record: AgentRecord;
  /** How the audit log names this caller. */
  actor: string;
  /**
   * The SHA-256 of the body the agent signed; the body read must hash to it (`agentBodyCheck`).
   * Absent for an agent that signs the older v1 text, which covers no body.
   */
  bodySha256?: string;
}

/** How long past its signature's last accepted moment a claim is kept (CLAIM_MAX_TTL_MS allows for it). */
const CLAIM_MARGIN_MS = 60_000;

/** Methods whose requests carry no body and change nothing. */
const READ_METHODS = new Set(['GET', 'HEAD']);

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
export async function authenticateAgent(
  store: Store, header: string | undefined, method: string, path: string, bodyHashHeader?: string,
  options: { now?: number; opensSession?: boolean } = {},
): Promise<AgentPrincipal> {
  const now = options.now ?? Date.now();
  if (!header) throw new StrataError('UNAUTHENTICATED', 'missing agent signature: send Authorization: StrataAgent <name>.<unix ms>.<signature>');
  const match = AGENT_AUTHORIZATION.exec(header.trim());
  if (!match) throw new StrataError('UNAUTHENTICATED', 'malformed agent authorization: expected StrataAgent <name>.<unix ms>.<base64url signature>');
  const [, name, ms, signature] = match as unknown as [string, string, string, string];
  const timestamp = Number(ms);
  if (Math.abs(now - timestamp) > AGENT_CLOCK_SKEW_MS) {
    throw new StrataError('UNAUTHENTICATED', `agent signature timestamp is ${Math.round((timestamp - now) / 1000)}s from the server's clock (allowed: ±${AGENT_CLOCK_SKEW_MS / 1000}s); check the agent's clock`);
  }
  const bodySha256 = bodyHashHeader ?? EMPTY_BODY_SHA256;
  if (!/^[0-9a-f]{64}$/.test(bodySha256)) throw new StrataError('UNAUTHENTICATED', `malformed ${AGENT_BODY_HASH_HEADER}: expected the body's SHA-256 as 64 lower-case hex digits`);
  if (READ_METHODS.has(method.toUpperCase()) && bodySha256 !== EMPTY_BODY_SHA256) throw new StrataError('UNAUTHENTICATED', `a ${method.toUpperCase()} request has no body to sign`);
  const record = await store.getAgent(name);
  if (!record?.publicKey) throw new StrataError('UNAUTHENTICATED', `agent ${JSON.stringify(name)} is not enrolled`);
  const signatureBytes = Buffer.from(signature, 'base64url');
  const key = cachedKey(record.publicKey);
  const signs = (text: string): boolean => {
    try {
      return signatureBytes.length === 64 && verify(null, Buffer.from(text), key, signatureBytes);
    } catch {
      return false;
    }
  };
  let checkedBody: string | undefined = bodySha256;
  if (!signs(agentSigningInput(name, timestamp, method, path, bodySha256))) {
    // Agents from before body signing sign v1 and send no body hash; their bodies go unchecked.
    if (bodyHashHeader !== undefined || !signs(agentSigningInputV1(name, timestamp, method, path))) {
      throw new StrataError('UNAUTHENTICATED', `invalid signature for agent ${JSON.stringify(name)}`);
    }
    checkedBody = undefined;
  }
  // Checked after the signature so that only the agent itself learns that it was revoked.
  if (record.revokedAt) throw new StrataError('UNAUTHENTICATED', `agent ${JSON.stringify(name)} is revoked`);
  // A write captured on the way (a TLS-terminating proxy, a log) must not be accepted again, by
  // this replica or another, while its timestamp is within the skew; nor may the upgrade that
  // opens the channel, over which an agent reports status and order results. Other reads are not
  // remembered: replaying one only repeats what its observer already saw. Keyed by the
  // signature's bytes: base64url text has spare bits, and another spelling of the same bytes is
  // the same signature. Kept a margin past the timestamp's last accepted moment, for replicas'
  // clocks that differ a little.
  if (!READ_METHODS.has(method.toUpperCase()) || options.opensSession === true) {
    const stillValidMs = Math.max(1000, timestamp + AGENT_CLOCK_SKEW_MS + CLAIM_MARGIN_MS - now);
    if (!(await store.claimOnce(signatureBytes.toString('hex'), Math.min(stillValidMs, CLAIM_MAX_TTL_MS)))) {
      throw new StrataError('UNAUTHENTICATED', `agent ${JSON.stringify(name)} sent this signed request before: a write is accepted once`);
    }
  }
  return { name, record, actor: `agent:${name}`, ...(checkedBody === undefined ? {} : { bodySha256: checkedBody }) };
}

/**
 * Checks an agent's request body against the SHA-256 it signed, as the body is read: passes the
 * bytes through and fails the read, before any handler sees the body, when they differ.
 */
export function agentBodyCheck(expected: string): Transform {
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      const actual = hash.digest('hex');
      callback(actual === expected ? null : new StrataError('UNAUTHENTICATED', `the request body does not match the SHA-256 the agent signed (${AGENT_BODY_HASH_HEADER})`));
    },
  });
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
