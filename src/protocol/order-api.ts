/**
 * Fleet orders over HTTP, between the CLI (or dashboard) and the server, which fans each order
 * out to its agents over their channels (orders.ts has what an agent receives and answers).
 *
 * - `POST /v1/orders` with an `OrderRequest` answers `application/x-ndjson`: one `OrderEvent` per
 *   line — `order` first, then `progress` and `result` lines as agents answer, `done` last.
 * - `GET /v1/orders` lists the kept orders, newest first; `GET /v1/orders/{id}` has per-host results.
 * - `GET|PUT|DELETE /v1/groups/{name}`: named targets, a list of hosts or a label selector.
 */
import { z } from 'zod';
import { HostResultSchema, OrderArgsSchema, ORDER_VERBS } from './orders.ts';

/**
 * Which agents an order goes to: exactly one of a list of agent names, a group, a label selector
 * (Kubernetes semantics, selector.ts) or every agent. Revoked agents are never picked.
 */
export const TargetSchema = z.object({
  hosts: z.array(z.string().min(1).max(128)).min(1).max(10_000).optional(),
  group: z.string().min(1).max(128).optional(),
  selector: z.string().max(4096).optional(),
  all: z.literal(true).optional(),
});
/** An order's target. */
export type Target = z.infer<typeof TargetSchema>;

/** How long an order may run: 30 s by default, at most 1 h, or 24 h for `logs --follow`. */
export const ORDER_TIMEOUT = { defaultMs: 30_000, maxMs: 3_600_000, followMaxMs: 86_400_000 } as const;

/** Body of POST /v1/orders. */
export const OrderRequestSchema = z.object({
  target: TargetSchema,
  args: OrderArgsSchema,
  /** Bounds the whole order; hosts without a result by then get TIMEOUT. Defaults as in ORDER_TIMEOUT. */
  timeoutMs: z.number().int().min(1).max(ORDER_TIMEOUT.followMaxMs).optional(),
  /** At most this many hosts in flight at once; as one answers, the next starts. */
  batch: z.number().int().min(1).max(10_000).optional(),
});
/** An order request. */
export type OrderRequest = z.infer<typeof OrderRequestSchema>;

/** Counts of an order's outcome; `failed` counts every host that did not succeed, offline and timed out ones included. */
export const OrderSummarySchema = z.object({
  ok: z.number().int(),
  failed: z.number().int(),
  offline: z.number().int(),
  timedOut: z.number().int(),
});
/** An order's outcome counts. */
export type OrderSummary = z.infer<typeof OrderSummarySchema>;

/** One line of the POST /v1/orders stream. */
export const OrderEventSchema = z.discriminatedUnion('type', [
  /** First: the order's id and the hosts it picked, sorted. */
  z.object({ type: z.literal('order'), id: z.string(), verb: z.enum(ORDER_VERBS), hosts: z.array(z.string()) }),
  /** Output a host sent before its result (followed log lines, sync progress). */
  z.object({ type: z.literal('progress'), host: z.string(), content: z.unknown() }),
  /** A host's one result. */
  z.object({ type: z.literal('result'), host: z.string(), result: HostResultSchema }),
  /** Last: every host has a result. */
  z.object({ type: z.literal('done'), summary: OrderSummarySchema }),
]);
/** One streamed order event. */
export type OrderEvent = z.infer<typeof OrderEventSchema>;

/** Result codes the server itself gives a host (besides what agents answer). */
export const SERVER_RESULT_CODES = {
  /** No channel to the agent when the order started, or it closed before the agent answered. */
  OFFLINE: 'OFFLINE',
  /** No result before the order's deadline; the agent was sent `order-cancel`. */
  TIMEOUT: 'TIMEOUT',
  /** The client went away before the host answered; the agent was sent `order-cancel`. */
  CANCELLED: 'CANCELLED',
} as const;

/** An order as GET /v1/orders lists it and GET /v1/orders/{id} shows it (with `results`). */
export const OrderViewSchema = z.object({
  id: z.string(),
  createdAt: z.string(),
  /** Absent while the order runs (or when the server stopped before it finished). */
  finishedAt: z.string().optional(),
  actor: z.string(),
  args: z.record(z.string(), z.unknown()),
  target: z.record(z.string(), z.unknown()),
  hosts: z.array(z.string()),
  summary: OrderSummarySchema.optional(),
  results: z.record(z.string(), HostResultSchema).optional(),
});
/** An order record as the API shows it. */
export type OrderView = z.infer<typeof OrderViewSchema>;

/** Body of PUT /v1/groups/{name}: exactly one of a host list or a selector. */
export const GroupBodySchema = z.object({
  hosts: z.array(z.string().min(1).max(128)).min(1).max(10_000).optional(),
  selector: z.string().max(4096).optional(),
});

/** A named target kept on the server. */
export const GroupViewSchema = z.object({
  name: z.string(),
  hosts: z.array(z.string()).optional(),
  selector: z.string().optional(),
  updatedAt: z.string(),
  updatedBy: z.string(),
});
/** A group as the API shows it. */
export type GroupView = z.infer<typeof GroupViewSchema>;
