/**
 * Who is calling: bearer API tokens with roles, checked in constant time, agents signing with
 * their own key (`agent-auth.ts`), and a throttle that slows down addresses that keep failing
 * to authenticate. `authorizeRequest` is the one gate every request passes before its body is read.
 */
import { isIPv6 } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { StrataError } from '../core/errors.ts';
import { parseToken, secretMatches, tokenUnusableReason } from '../core/tokens.ts';
import type { Store, TokenRecord } from '../store/contract.ts';
import { authenticateAgent, isAgentAuthorization } from './agent-auth.ts';
import { AGENT_BODY_HASH_HEADER } from '../protocol/agent.ts';
import { toStrataError } from './errors.ts';

/** Operator roles, weakest first. */
export const ROLES = ['viewer', 'deployer', 'admin'] as const;
/** An operator role. */
export type Role = (typeof ROLES)[number];
/**
 * What a route requires: a role, an enrolled agent (`agent`), or nothing at all. A route whose
 * config also sets `alsoAgents` accepts an agent as well as its role; its handler limits what
 * an agent may see.
 */
export type Access = Role | 'public' | 'agent';

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

/** Failures per identity claimed from one address before that pair is refused, and the window they are counted in. */
const THROTTLE = { failures: 5, windowMs: 60_000, maxTracked: 10_000 };
/**
 * Failures from one address in the window, whatever identities it claims, before the whole
 * address is refused: counting per claimed identity alone lets a caller that invents a new
 * identity for every attempt go on for ever. High enough that a fleet behind one NAT address is
 * not locked out by a few broken agents, each of which its identity's count stops after five.
 */
const ADDRESS_FAILURES = 100;
/** Failed writes audited per address and window; past that they are only counted, so failures cannot flood the audit log. */
const AUDITED_FAILURES = 20;

/**
 * Counts failures per key. After `limit` in the window, the key is refused until the window
 * passes, doubling the wait for each further failure.
 */
class FailureCounter {
  private readonly failures = new Map<string, { count: number; first: number; blockedUntil: number }>();
  private readonly limit: number;
  private readonly scope: string;

  constructor(limit: number, scope: string) {
    this.limit = limit;
    this.scope = scope;
  }

  /** Throws TOO_MANY_AUTH_FAILURES while `key` is blocked. */
  check(key: string, now: number): void {
    const entry = this.failures.get(key);
    if (entry && entry.blockedUntil > now) {
      const retryAfter = Math.ceil((entry.blockedUntil - now) / 1000);
      throw new StrataError('TOO_MANY_AUTH_FAILURES', `too many failed authentications from ${key.split('|')[0]}${this.scope}; retry in ${retryAfter}s`, { details: { retryAfterSeconds: retryAfter } });
    }
  }

  /** Records a failure for `key`; returns the failures counted in its window. */
  fail(key: string, now: number): number {
    let entry = this.failures.get(key);
    if (!entry || now - entry.first > THROTTLE.windowMs && entry.blockedUntil <= now) {
      entry = { count: 0, first: now, blockedUntil: 0 };
      if (this.failures.size >= THROTTLE.maxTracked) this.failures.delete(this.failures.keys().next().value!);
      this.failures.set(key, entry);
    }
    entry.count += 1;
    if (entry.count >= this.limit) {
      const excess = entry.count - this.limit;
      entry.blockedUntil = now + Math.min(THROTTLE.windowMs * 2 ** excess, 3_600_000);
    }
    return entry.count;
  }

  /** Forgets a key after a success. */
  succeed(key: string): void {
    this.failures.delete(key);
  }
}

/**
 * Where failures are counted from: an IPv4 address as it is (IPv4-mapped IPv6 included), an IPv6
 * address by its /64, since one host or network is commonly handed a whole /64 and could
 * otherwise pick a fresh address for every attempt.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!isIPv6(ip)) return ip;
  const [head = '', tail] = ip.toLowerCase().split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Slows down callers that keep failing to authenticate: per identity claimed from an address
 * (see `throttleKey`), and per address whatever it claims.
 */
export class AuthThrottle {
  private readonly perIdentity = new FailureCounter(THROTTLE.failures, ' for this identity');
  private readonly perAddress = new FailureCounter(ADDRESS_FAILURES, '');

  /**
   * Runs `authenticate` for a request from `address` carrying `authorization`: refuses a blocked
   * identity or address first, counts a failure against both, audits a failed write (`audit`,
   * at most AUDITED_FAILURES per address and window), and clears the identity's count on success.
   */
  async guard<T>(store: Store, ip: string, authorization: string | undefined, audit: { target: string } | undefined, authenticate: () => Promise<T>, now = Date.now()): Promise<T> {
    const address = addressKey(ip);
    const key = throttleKey(address, authorization);
    this.perAddress.check(address, now);
    this.perIdentity.check(key, now);
    let result: T;
    try {
      result = await authenticate();
    } catch (error) {
      this.perIdentity.fail(key, now);
      const fromAddress = this.perAddress.fail(address, now);
      if (audit !== undefined && fromAddress <= AUDITED_FAILURES) {
        await store.appendAudit({ actor: `address:${ip}`, action: 'auth.failed', target: audit.target, result: toStrataError(error).code });
      }
      throw error;
    }
    this.perIdentity.succeed(key);
    return result;
  }
}

/** The body hash an agent request claims, if it sends exactly one. */
function bodyHashHeader(request: FastifyRequest): string | undefined {
  const value = request.headers[AGENT_BODY_HASH_HEADER];
  if (Array.isArray(value)) throw new StrataError('UNAUTHENTICATED', `${AGENT_BODY_HASH_HEADER} given more than once`);
  return value;
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

/**
 * What failures are counted against: the address together with the identity the request claims
 * (a token id, a join token id, an agent name). A whole fleet behind one NAT address must not be
 * locked out because one of its agents keeps presenting a bad signature; and since every secret
 * is 24 random bytes, counting per claimed identity still stops guessing.
 */
export function throttleKey(address: string, authorization: string | undefined): string {
  const claimed = /^Bearer\s+(?:strata_|SJ1\.[0-9a-f]{64}\.)([0-9a-f]{12})_/i.exec(authorization ?? '')?.[1]
    ?? /^StrataAgent\s+([^.\s]{1,128})\./.exec(authorization ?? '')?.[1]
    ?? '-';
  return `${address}|${claimed}`;
}

/**
 * Authenticates a request for its route's access rule (before the body is read): sets
 * `request.principal` for an operator or `request.agent` for an agent, counts failures in the
 * throttle, audits failed writes, and refuses callers the route does not admit.
 */
export async function authorizeRequest(store: Store, throttle: AuthThrottle, request: FastifyRequest): Promise<void> {
  const { access, alsoAgents } = request.routeOptions.config;
  if (access === undefined && request.routeOptions.url !== undefined) {
    throw new StrataError('INTERNAL', `route ${request.routeOptions.url} declares no access rule`);
  }
  if (access === undefined || access === 'public') return;
  const header = request.headers.authorization;
  const asAgent = access === 'agent' || (alsoAgents === true && isAgentAuthorization(header));
  const audit = request.method !== 'GET' && request.method !== 'HEAD' ? { target: request.routeOptions.url ?? request.url } : undefined;
  await throttle.guard(store, request.ip, header, audit, async () => {
    // A WebSocket upgrade opens the channel, over which the agent writes: claimed like a write.
    if (asAgent) request.agent = await authenticateAgent(store, header, request.method, request.url, bodyHashHeader(request), { opensSession: request.headers.upgrade !== undefined });
    else request.principal = await authenticate(store, request);
  });
  if (asAgent || !request.principal) return;
  if (!roleAllows(request.principal.role, access)) {
    throw new StrataError('FORBIDDEN', `role ${request.principal.role} may not do this; it needs ${access}`, { details: { role: request.principal.role, needed: access } });
  }
}
