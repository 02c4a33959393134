/**
 * What agents and the server say to each other: enrollment, the desired state, status reports,
 * and the versioned envelopes of the agent channel (one WebSocket per agent).
 *
 * HTTP (the agent's ground truth and its writes):
 * - `POST /v1/agents/enroll` with `Authorization: Bearer <join token>` and an `EnrollRequest`:
 *   registers the agent's public key; answers `EnrollResponse`.
 * - Every later agent request carries `Authorization: StrataAgent <name>.<unix ms>.<signature>`
 *   where the signature is Ed25519 over `agentSigningInput(...)`, which covers the SHA-256 of the
 *   request's body (sent in `AGENT_BODY_HASH_HEADER`; no header means no body); the server accepts
 *   it within `AGENT_CLOCK_SKEW_MS` of its own clock, at most once for a write, and refuses
 *   revoked agents at once.
 * - `GET /v1/agent/desired` → `DesiredState` (the full state, re-read every poll interval).
 * - `GET /v1/blobs/{sha256}` → the blob, if a configuration the agent tracks references it.
 * - `POST /v1/agent/status` with a `StatusReport` → 204.
 * - `GET /v1/agent/channel` upgrades to the WebSocket carrying `ChannelMessage`s.
 */
import { z } from 'zod';
import { ConfigurationSchema } from './api.ts';
import { AgentOrderSchema, HostResultSchema } from './orders.ts';
import { MetricsSummarySchema } from './metrics.ts';

/** The channel protocol version every envelope carries. */
export const CHANNEL_VERSION = 1;

/** How far an agent's signed timestamp may be from the server's clock. */
export const AGENT_CLOCK_SKEW_MS = 5 * 60_000;

/** The header carrying the hex SHA-256 of an agent request's body, which the signature covers. */
export const AGENT_BODY_HASH_HEADER = 'x-strata-body-sha256';

/** SHA-256 of an empty body: what a request without AGENT_BODY_HASH_HEADER is signed with. */
export const EMPTY_BODY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * The text agents signed before body signing (no body hash). Servers still accept it from an
 * agent that sends no AGENT_BODY_HASH_HEADER, so a fleet keeps working while its agents are
 * upgraded; such a request's body is not bound to its signature.
 */
export function agentSigningInputV1(name: string, timestampMs: number, method: string, path: string): string {
  return `strata-agent-v1\n${name}\n${timestampMs}\n${method.toUpperCase()}\n${path}`;
}

/** The text an agent signs for one request: who, when, what, and the exact body bytes' SHA-256. */
export function agentSigningInput(name: string, timestampMs: number, method: string, path: string, bodySha256: string = EMPTY_BODY_SHA256): string {
  return `strata-agent-v2\n${name}\n${timestampMs}\n${method.toUpperCase()}\n${path}\n${bodySha256}`;
}

/** Phases of a configuration's deploy on an agent (`service`: starting the new release's service and waiting until it is healthy). */
export const PHASES = ['pending', 'downloading', 'unpacking', 'hook', 'service', 'deployed', 'failed'] as const;
/** A deploy phase. */
export type Phase = (typeof PHASES)[number];

/** Labels: `key=value` pairs used by selectors. */
export const LabelsSchema = z.record(
  z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62}[A-Za-z0-9])?$/, 'label keys are 1-63 letters, digits, ".", "_", "-" or "/"'),
  z.string().regex(/^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/, 'label values are up to 63 letters, digits, ".", "_" or "-"'),
);

/** What an agent tells about its machine. */
export const InventorySchema = z.object({
  hostname: z.string(),
  os: z.string(),
  kernel: z.string(),
  arch: z.string(),
  cpus: z.number().int(),
  memoryBytes: z.number(),
  agentVersion: z.string(),
});
/** An agent's inventory. */
export type Inventory = z.infer<typeof InventorySchema>;

/** Body of POST /v1/agents/enroll. */
export const EnrollRequestSchema = z.object({
  name: z.string(),
  /** The agent's Ed25519 public key, SPKI PEM. */
  publicKey: z.string().max(4096),
  labels: LabelsSchema.default({}),
  tracks: z.array(z.string()).max(64).default([]),
  inventory: InventorySchema.optional(),
});
/** An enrollment request. */
export type EnrollRequest = z.infer<typeof EnrollRequestSchema>;

/** Answer to an enrollment. */
export const EnrollResponseSchema = z.object({ name: z.string(), enrolledAt: z.string() });

/** The configurations an agent must converge to, with everything needed to deploy them. */
export const DesiredStateSchema = z.object({
  agent: z.string(),
  /** Store-wide sequence the state reflects (for logs and resume). */
  seq: z.number().int(),
  configurations: z.array(ConfigurationSchema),
  /** Tracked names that do not exist (yet) on the server. */
  missing: z.array(z.string()),
});
/** The desired state of one agent. */
export type DesiredState = z.infer<typeof DesiredStateSchema>;

/** States of a configuration's service on an agent. */
export const SERVICE_STATES = ['starting', 'running', 'restarting', 'unhealthy', 'stopped', 'failed'] as const;

/** The state of a configuration's service, as the agent's supervisor sees it. */
export const ServiceStatusSchema = z.object({
  state: z.enum(SERVICE_STATES),
  pid: z.number().int().optional(),
  /** Restarts of this release's service (by policy or by a `restart` order). */
  restarts: z.number().int(),
  /** When the state last changed. */
  since: z.string(),
  startedAt: z.string().optional(),
  /** The release (configuration id) the service runs from. */
  releaseId: z.string().optional(),
  lastExit: z.object({ code: z.number().int().nullable(), signal: z.string().nullable(), at: z.string() }).optional(),
  /** The last health check's message, bounded. */
  health: z.string().max(1024).optional(),
});
/** A service's status. */
export type ServiceStatus = z.infer<typeof ServiceStatusSchema>;

/** The status of one tracked configuration on an agent. */
export const ConfigStatusSchema = z.object({
  configuration: z.string(),
  phase: z.enum(PHASES),
  /** The revision and id being deployed (desired) and the ones current on disk. */
  desiredRevision: z.number().int().optional(),
  desiredId: z.string().optional(),
  currentRevision: z.number().int().optional(),
  currentId: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  /** The tail of the hook's output, bounded. */
  hookOutput: z.string().max(64 * 1024).optional(),
  hookExitCode: z.number().int().nullable().optional(),
  /** The configuration's service, when it has one. */
  service: ServiceStatusSchema.optional(),
  at: z.string(),
});
/** A configuration's status on an agent. */
export type ConfigStatus = z.infer<typeof ConfigStatusSchema>;

/** Body of POST /v1/agent/status, and of the channel's `status` message. */
export const StatusReportSchema = z.object({
  inventory: InventorySchema.optional(),
  labels: LabelsSchema.optional(),
  /** The configurations the agent was started with (`--track`); the server keeps them as its tracks. */
  tracks: z.array(z.string()).max(64).optional(),
  configurations: z.array(ConfigStatusSchema).max(64),
});
/** A status report. */
export type StatusReport = z.infer<typeof StatusReportSchema>;

/** Fields every channel envelope carries. */
const Envelope = { v: z.literal(CHANNEL_VERSION), id: z.string().max(64) };

/** Messages on the agent channel, in both directions. */
export const ChannelMessageSchema = z.discriminatedUnion('type', [
  /** server → agent, first message after the upgrade and after every change: the full desired state. */
  z.object({ ...Envelope, type: z.literal('desired'), state: DesiredStateSchema }),
  /** either way: liveness; the peer answers `pong` with the same id. */
  z.object({ ...Envelope, type: z.literal('ping'), at: z.string() }),
  z.object({ ...Envelope, type: z.literal('pong'), at: z.string() }),
  /** agent → server: a status report (same as POST /v1/agent/status). */
  z.object({ ...Envelope, type: z.literal('status'), report: StatusReportSchema }),
  /** agent → server, every sample interval: a compact summary of the machine's vital signs (metrics.ts). */
  z.object({ ...Envelope, type: z.literal('metrics'), summary: MetricsSummarySchema }),
  /** server → agent: run an order (see orders.ts); the agent answers with one `order-result`. */
  z.object({ ...Envelope, type: z.literal('order'), order: AgentOrderSchema }),
  /** server → agent: stop an order early (the operator interrupted `logs --follow`, or it timed out). */
  z.object({ ...Envelope, type: z.literal('order-cancel'), orderId: z.string().max(64) }),
  /** agent → server: part of an order's output before its result (sync progress, followed log lines). */
  z.object({ ...Envelope, type: z.literal('order-progress'), orderId: z.string().max(64), content: z.unknown() }),
  /** agent → server: the order's one result. */
  z.object({ ...Envelope, type: z.literal('order-result'), orderId: z.string().max(64), result: HostResultSchema }),
  /** either way: the peer sent something it could not accept. */
  z.object({ ...Envelope, type: z.literal('error'), code: z.string(), message: z.string() }),
]);
/** One message on the agent channel. */
export type ChannelMessage = z.infer<typeof ChannelMessageSchema>;
