/**
 * API tokens and agent join tokens: how they are written, generated, hashed and checked.
 * A token is `<prefix><id>_<secret>`; the id finds the record, only sha256(secret) is stored, and
 * the comparison is constant-time. A join token also carries the server CA's fingerprint
 * (as k3s' `K10<ca hash>::…` does), so an agent holding only the URL and the token can verify the
 * server before it sends the secret.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { TokenRecord } from '../store/contract.ts';

const API_PREFIX = 'strata_';
const JOIN_PREFIX = 'SJ1.';

/** A freshly generated token: the text to show once, and the record to store. */
export interface GeneratedToken {
  text: string;
  id: string;
  secretHash: string;
}

/** sha256 of a token secret, as stored. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function newIdAndSecret(): { id: string; secret: string } {
  return { id: randomBytes(6).toString('hex'), secret: randomBytes(24).toString('base64url') };
}

/** Generates an API token (shown once; only the hash is kept). */
export function generateApiToken(): GeneratedToken {
  const { id, secret } = newIdAndSecret();
  return { text: `${API_PREFIX}${id}_${secret}`, id, secretHash: hashSecret(secret) };
}

/** Generates a join token that embeds the CA fingerprint (64 hex digits). */
export function generateJoinToken(caFingerprint: string): GeneratedToken {
  const { id, secret } = newIdAndSecret();
  return { text: `${JOIN_PREFIX}${caFingerprint}.${id}_${secret}`, id, secretHash: hashSecret(secret) };
}

/** The parts of a token text, or undefined when it is not a Strata token. */
export function parseToken(text: string): { kind: 'api' | 'join'; id: string; secret: string; caFingerprint?: string } | undefined {
  let rest = text.trim();
  let kind: 'api' | 'join';
  let caFingerprint: string | undefined;
  if (rest.startsWith(API_PREFIX)) {
    kind = 'api';
    rest = rest.slice(API_PREFIX.length);
  } else if (rest.startsWith(JOIN_PREFIX)) {
    kind = 'join';
    const match = /^SJ1\.([0-9a-f]{64})\.(.*)$/.exec(rest);
    if (!match) return undefined;
    caFingerprint = match[1];
    rest = match[2]!;
  } else {
    return undefined;
  }
  const match = /^([0-9a-f]{12})_([A-Za-z0-9_-]{32})$/.exec(rest);
  if (!match) return undefined;
  return { kind, id: match[1]!, secret: match[2]!, ...(caFingerprint ? { caFingerprint } : {}) };
}

/** True when `secret` hashes to the record's stored hash; constant-time in the secret. */
export function secretMatches(record: TokenRecord, secret: string): boolean {
  const given = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(record.secretHash, 'hex');
  return given.length === stored.length && timingSafeEqual(given, stored);
}

/** Why a stored token may not be used now, or undefined when it is usable. */
export function tokenUnusableReason(record: TokenRecord, now: Date): string | undefined {
  if (record.revokedAt) return 'revoked';
  if (record.expiresAt && Date.parse(record.expiresAt) <= now.getTime()) return 'expired';
  return undefined;
}
