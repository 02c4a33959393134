/**
 * Fleet orders: what an operator asks of many agents at once, and the one result each agent
 * gives. The server is the proxy: it sends each targeted agent an `order` over its channel and
 * gathers `order-progress` and `order-result` messages (see ChannelMessageSchema in agent.ts).
 * Agents decide what they allow (their own config file); the server never sends a command line.
 */
import { z } from 'zod';

/** The verbs an order can carry. */
export const ORDER_VERBS = ['ping', 'exec', 'sync', 'logs', 'restart'] as const;
/** An order verb. */
export type OrderVerb = (typeof ORDER_VERBS)[number];

/** Arguments of each verb; names and arguments travel as data, never as a command line. */
export const OrderArgsSchema = z.discriminatedUnion('verb', [
  z.object({ verb: z.literal('ping') }),
  /** Runs the agent-whitelisted command `name`, filling its placeholders with `args`. */
  z.object({ verb: z.literal('exec'), name: z.string().min(1).max(128), args: z.array(z.string().max(4096)).max(64) }),
  /** An rsync group from the agent's config: `dry-run` lists changes, `run` syncs, `kill` stops a running sync. */
  z.object({ verb: z.literal('sync'), group: z.string().min(1).max(128), mode: z.enum(['dry-run', 'run', 'kill']) }),
  /** The agent's own log, or the last hook output of a configuration; `follow` streams new lines as progress. */
  z.object({
    verb: z.literal('logs'),
    source: z.enum(['agent', 'hook']),
    configuration: z.string().max(128).optional(),
    lines: z.number().int().min(1).max(10_000).default(100),
    follow: z.boolean().default(false),
  }),
  /** Restarts a configuration's service (graceful stop, then start of the same release); answers its new pid and restart count. */
  z.object({ verb: z.literal('restart'), configuration: z.string().min(1).max(128) }),
]);
/** A verb with its arguments. */
export type OrderArgs = z.infer<typeof OrderArgsSchema>;

/** One agent's answer to an order. `code` is a stable error code, or the exit status of a command. */
export const HostResultSchema = z.object({
  ok: z.boolean(),
  code: z.union([z.string(), z.number().int()]),
  message: z.string(),
  content: z.unknown().optional(),
  durationMs: z.number(),
});
/** One host's result. */
export type HostResult = z.infer<typeof HostResultSchema>;

/** What the agent receives: the order id, what to do, and by when (after which it gives up). */
export const AgentOrderSchema = z.object({ id: z.string().max(64), args: OrderArgsSchema, deadline: z.string() });
/** An order as an agent receives it. */
export type AgentOrder = z.infer<typeof AgentOrderSchema>;

/** Result codes the agent side uses, besides exit statuses and the server's catalog codes. */
export const ORDER_CODES = {
  OK: 'OK',
  OFFLINE: 'OFFLINE',
  TIMEOUT: 'TIMEOUT',
  NOT_WHITELISTED: 'NOT_WHITELISTED',
  BAD_ARGUMENT: 'BAD_ARGUMENT',
  UNKNOWN_GROUP: 'UNKNOWN_GROUP',
  PATH_NOT_ALLOWED: 'PATH_NOT_ALLOWED',
  ALREADY_RUNNING: 'ALREADY_RUNNING',
  NOT_RUNNING: 'NOT_RUNNING',
  SPAWN_FAILED: 'SPAWN_FAILED',
  UNSUPPORTED: 'UNSUPPORTED',
  NO_SERVICE: 'NO_SERVICE',
  /** The agent is busy with something that must not overlap (a restart during the deploy of that configuration). */
  BUSY: 'BUSY',
} as const;
