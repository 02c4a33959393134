/**
 * Who is calling: bearer API tokens with roles, checked in constant time, and a throttle that
 * slows down addresses that keep failing to authenticate.
 */
import type { FastifyRequest } from 'fastify';
import { StrataError } from '../core/errors.ts';
import { parseToken, secretMatches, tokenUnusableReason } from '../core/tokens.ts';
import type { Store, TokenRecord } from '../store/contract.ts';

/** Operator roles, weakest first. */
export const ROLES = ['viewer', 'deployer', 'admin'] as const;
/** An operator role. */
export type Role = (typeof ROLES)[number];
/** What a route requires: a role, or nothing at all. */
export type Access = Role | 'public';

/** The authenticated caller of a request. */
export interface Principal {
  tokenId: string;
  name: string;
  role: Role;
  /** How the audit log names this caller. */
  actor: string;
}

/** True when `role` grants at least `needed`. */
export function roleAllows(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** Failures per address before requests are refused, and the window they are counted in. */
const THROTTLE = { failures: 5, windowMs: 60_000, maxTracked: 10_000 };

/**
 * Counts authentication failures per address. After `THROTTLE.failures` in the window, the
 * address is refused until the window passes, doubling the wait for each further failure.
 */
export class AuthThrottle {
  private readonly failures = new Map<string, { count: number; first: number; blockedUntil: number }>();

  /** Throws TOO_MANY_AUTH_FAILURES while `address` is blocked. */
  check(address: string, now = Date.now()): void {
    const entry = this.failures.get(address);
    if (entry && entry.blockedUntil > now) {
      const retryAfter = Math.ceil((entry.blockedUntil - now) / 1000);
      throw new StrataError('TOO_MANY_AUTH_FAILURES', `too many failed authentications from ${address}; retry in ${retryAfter}s`, { details: { retryAfterSeconds: retryAfter } });
    }
  }

  /** Records a failure from `address`. */
  fail(address: string, now = Date.now()): void {
    let entry = this.failures.get(address);
    if (!entry || now - entry.first > THROTTLE.windowMs && entry.blockedUntil <= now) {
      entry = { count: 0, first: now, blockedUntil: 0 };
      if (this.failures.size >= THROTTLE.maxTracked) this.failures.delete(this.failures.keys().next().value!);
      this.failures.set(address, entry);
    }
    entry.count += 1;
    if (entry.count >= THROTTLE.failures) {
      const excess = entry.count - THROTTLE.failures;
      entry.blockedUntil = now + Math.min(THROTTLE.windowMs * 2 ** excess, 3_600_000);
    }
  }

  /** Forgets an address after a success. */
  succeed(address: string): void {
    this.failures.delete(address);
  }
}

/** Finds and checks the token of a request; throws UNAUTHENTICATED with the reason. */
export async function authenticate(store: Store, request: FastifyRequest, now = new Date()): Promise<Principal> {
  const header = request.headers.authorization;
  if (!header) throw new StrataError('UNAUTHENTICATED', 'missing API token: set STRATA_TOKEN or pass --token');
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  const parsed = match ? parseToken(match[1]!) : undefined;
  if (!parsed || parsed.kind !== 'api') throw new StrataError('UNAUTHENTICATED', 'malformed API token');
  const record: TokenRecord | undefined = await store.getToken(parsed.id);
  if (!record || record.kind !== 'api' || !secretMatches(record, parsed.secret)) throw new StrataError('UNAUTHENTICATED', 'invalid API token');
  const unusable = tokenUnusableReason(record, now);
  if (unusable) throw new StrataError('UNAUTHENTICATED', `API token ${record.id} is ${unusable}`);
  const role = record.role as Role;
  return { tokenId: record.id, name: record.name, role, actor: `token:${record.id}(${record.name})` };
}
