/**
 * The cluster bus's subjects and messages on NATS. Every inbound message is validated: a replica
 * of another version, or anything else publishing on these subjects, is ignored rather than
 * trusted. All subjects start with the prefix (`strata` by default), so several Strata
 * installations can share one NATS cluster.
 *
 * | subject                          | kind        | carries                                     |
 * |----------------------------------|-------------|---------------------------------------------|
 * | `P.cluster.beat`                 | broadcast   | a replica is alive: digest and count of its claims |
 * | `P.cluster.bye`                  | broadcast   | a replica is shutting down                  |
 * | `P.cluster.presence`             | broadcast   | a replica claims or releases an agent session |
 * | `P.cluster.event`                | broadcast   | assignments / agent changed, agent revoked  |
 * | `P.cluster.to.<replica>`         | direct      | an order or cancel for an agent it holds, or a reply for an order it sent |
 * | `P.cluster.snapshot.<replica>`   | request     | one page of the replica's claims            |
 */
import { z } from 'zod';
import { AgentOrderSchema, HostResultSchema } from '../../protocol/orders.ts';
import { CHANNEL_VERSION } from '../../protocol/agent.ts';
import { MetricsSummarySchema } from '../../protocol/metrics.ts';

/** The wire version of these messages; a replica ignores messages of another version. */
export const BUS_VERSION = 1;

/** The subjects for a prefix. */
export function busSubjects(prefix: string) {
  const base = `${prefix}.cluster`;
  return {
    beat: `${base}.beat`,
    bye: `${base}.bye`,
    presence: `${base}.presence`,
    event: `${base}.event`,
    to: (replica: string) => `${base}.to.${replica}`,
    snapshot: (replica: string) => `${base}.snapshot.${replica}`,
  };
}

const Replica = z.string().regex(/^[0-9a-f]{12}$/);
const AgentName = z.string().min(1).max(256);
const Session = z.string().min(1).max(64);

/** `beat`: the sender is alive and holds `count` claims with `digest`. */
export const BeatSchema = z.object({ v: z.literal(BUS_VERSION), replica: Replica, digest: z.string().regex(/^[0-9a-f]{16}$/), count: z.number().int().nonnegative() });

/** `bye`: the sender is shutting down; its claims go at once. */
export const ByeSchema = z.object({ v: z.literal(BUS_VERSION), replica: Replica });

/** `presence`: the sender claims or releases an agent session. */
export const PresenceSchema = z.discriminatedUnion('op', [
  z.object({ v: z.literal(BUS_VERSION), replica: Replica, op: z.literal('claim'), agent: AgentName, session: Session, connectedAt: z.number().int().nonnegative() }),
  z.object({ v: z.literal(BUS_VERSION), replica: Replica, op: z.literal('release'), agent: AgentName, session: Session }),
]);

/** `event`: a change the receivers apply to the agents they hold. */
export const EventSchema = z.object({
  v: z.literal(BUS_VERSION),
  replica: Replica,
  event: z.discriminatedUnion('type', [
    z.object({ type: z.literal('assignments') }),
    z.object({ type: z.literal('agent'), name: AgentName, labels: z.record(z.string(), z.string()), tracks: z.array(z.string()) }),
    z.object({ type: z.literal('revoke'), name: AgentName }),
    z.object({ type: z.literal('metrics'), name: AgentName, summary: MetricsSummarySchema }),
  ]),
});

// The agent's channel envelope, forwarded as the agent sent it (the holding replica validated it already).
const OrderReplySchema = z.discriminatedUnion('type', [
  z.object({ v: z.literal(CHANNEL_VERSION), id: z.string().max(64), type: z.literal('order-progress'), orderId: z.string().max(64), content: z.unknown() }),
  z.object({ v: z.literal(CHANNEL_VERSION), id: z.string().max(64), type: z.literal('order-result'), orderId: z.string().max(64), result: HostResultSchema }),
]);

/** `to.<replica>`: a command for an agent the receiver holds, or a reply for an order it sent. */
export const DirectSchema = z.discriminatedUnion('kind', [
  z.object({
    v: z.literal(BUS_VERSION), kind: z.literal('command'), origin: Replica, agent: AgentName,
    command: z.discriminatedUnion('type', [
      z.object({ type: z.literal('order'), order: AgentOrderSchema }),
      z.object({ type: z.literal('order-cancel'), orderId: z.string().max(64) }),
    ]),
  }),
  z.object({ v: z.literal(BUS_VERSION), kind: z.literal('reply'), agent: AgentName, reply: OrderReplySchema }),
]);

/** Largest page of claims a snapshot reply carries (well under NATS's 1 MiB default payload). */
export const SNAPSHOT_PAGE = 2000;

/** `snapshot.<replica>` request: which page. */
export const SnapshotRequestSchema = z.object({ v: z.literal(BUS_VERSION), offset: z.number().int().nonnegative() });

/** `snapshot.<replica>` reply: claims as `[agent, session, connectedAt]`, and how many there are in all. */
export const SnapshotReplySchema = z.object({
  v: z.literal(BUS_VERSION),
  total: z.number().int().nonnegative(),
  claims: z.array(z.tuple([AgentName, Session, z.number().int().nonnegative()])).max(SNAPSHOT_PAGE),
});
