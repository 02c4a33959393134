/**
 * What operators see of the fleet: each agent with its configurations (the server's current
 * revision next to what the agent reports), and each configuration's rollout across agents.
 * The schemas document the responses of the /v1/agents and /status routes.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PHASES, ServiceStatusSchema, type ConfigStatus } from '../../protocol/agent.ts';
import type { AgentRecord, Configuration } from '../../store/contract.ts';
import type { PresenceInfo } from './presence.ts';
import { statusesOf } from './status.ts';

const ErrorSchema = z.object({ code: z.string(), message: z.string() });

/** One configuration of one agent: the server's current revision and the agent's last report. */
export const AgentConfigViewSchema = z.object({
  configuration: z.string(),
  /** The server's current revision and id; null when the configuration does not exist. */
  revision: z.number().int().nullable(),
  id: z.string().nullable(),
  /** The agent's last reported phase, or `unknown` before its first report. */
  phase: z.enum([...PHASES, 'unknown']),
  desiredRevision: z.number().int().optional(),
  currentRevision: z.number().int().optional(),
  currentId: z.string().optional(),
  /** True when the agent reports `deployed` with the server's current content. */
  upToDate: z.boolean(),
  error: ErrorSchema.optional(),
  hookExitCode: z.number().int().nullable().optional(),
  /** The service's state as the agent last reported it. */
  service: ServiceStatusSchema.optional(),
  at: z.string().optional(),
});
/** One configuration of one agent. */
export type AgentConfigView = z.infer<typeof AgentConfigViewSchema>;

/** An agent as GET /v1/agents lists it. */
export const AgentSummarySchema = z.object({
  name: z.string(),
  labels: z.record(z.string(), z.string()),
  online: z.boolean(),
  lastSeen: z.string().nullable(),
  enrolledAt: z.string(),
  revokedAt: z.string().optional(),
  /** The server replica holding the agent's channel, while online. */
  replica: z.string().optional(),
  configurations: z.array(AgentConfigViewSchema),
});

/** An agent as GET /v1/agents/{name} shows it. */
export const AgentDetailSchema = AgentSummarySchema.extend({
  tracks: z.array(z.string()),
  /** Configurations it gets through assignments (beyond its own tracks). */
  assigned: z.array(z.string()),
  inventory: z.record(z.string(), z.unknown()).optional(),
  /** sha256 of the agent's public key (DER), to compare with the agent's own view. */
  keyFingerprint: z.string().optional(),
  joinTokenId: z.string().optional(),
  /** As in the summary, plus the bounded tail of the last hook output. */
  configurations: z.array(AgentConfigViewSchema.extend({ hookOutput: z.string().optional() })),
});

/** One agent's line in a configuration's status. */
export const ConfigurationAgentStatusSchema = AgentConfigViewSchema.omit({ configuration: true, revision: true, id: true }).extend({ agent: z.string(), online: z.boolean() });

/** GET /v1/configurations/{name}/status. */
export const ConfigurationStatusSchema = z.object({
  configuration: z.string(),
  revision: z.number().int(),
  id: z.string(),
  /** Agents (not revoked) that track it. */
  agents: z.number().int(),
  upToDate: z.number().int(),
  failed: z.number().int(),
  online: z.number().int(),
  rows: z.array(ConfigurationAgentStatusSchema),
});

/** One configuration's view for an agent. */
export function configView(name: string, configuration: Configuration | undefined, status: ConfigStatus | undefined): AgentConfigView {
  const upToDate = configuration !== undefined && status?.phase === 'deployed'
    && (status.currentId === configuration.id || (status.currentId === undefined && status.currentRevision === configuration.revision));
  return {
    configuration: name, revision: configuration?.revision ?? null, id: configuration?.id ?? null,
    phase: status?.phase ?? 'unknown', upToDate,
    ...(status?.desiredRevision === undefined ? {} : { desiredRevision: status.desiredRevision }),
    ...(status?.currentRevision === undefined ? {} : { currentRevision: status.currentRevision }),
    ...(status?.currentId === undefined ? {} : { currentId: status.currentId }),
    ...(status?.error ? { error: status.error } : {}),
    ...(status?.hookExitCode === undefined ? {} : { hookExitCode: status.hookExitCode }),
    ...(status?.service ? { service: status.service } : {}),
    ...(status ? { at: status.at } : {}),
  };
}

/** An agent's summary, given what it tracks and the current configurations. */
export function agentSummary(record: AgentRecord, tracked: readonly string[], configurations: ReadonlyMap<string, Configuration>, presence: PresenceInfo): z.infer<typeof AgentSummarySchema> {
  const statuses = statusesOf(record);
  const online = presence.online && !record.revokedAt;
  const seen = [presence.lastHeartbeat, record.lastSeenAt].filter((t): t is string => t !== undefined).sort().at(-1) ?? null;
  return {
    name: record.name, labels: record.labels, online, lastSeen: seen, enrolledAt: record.enrolledAt,
    ...(record.revokedAt ? { revokedAt: record.revokedAt } : {}),
    ...(online && presence.replica ? { replica: presence.replica } : {}),
    configurations: tracked.map((name) => configView(name, configurations.get(name), statuses.get(name))),
  };
}

/** An agent's details: its summary plus tracks, assignments, inventory and each configuration's hook output. */
export function agentDetail(record: AgentRecord, tracked: readonly string[], configurations: ReadonlyMap<string, Configuration>, presence: PresenceInfo): z.infer<typeof AgentDetailSchema> {
  const statuses = statusesOf(record);
  let keyFingerprint: string | undefined;
  if (record.publicKey) {
    const body = record.publicKey.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    keyFingerprint = createHash('sha256').update(Buffer.from(body, 'base64')).digest('hex');
  }
  const summary = agentSummary(record, tracked, configurations, presence);
  return {
    ...summary,
    configurations: summary.configurations.map((view) => {
      const hookOutput = statuses.get(view.configuration)?.hookOutput;
      return hookOutput === undefined ? view : { ...view, hookOutput };
    }),
    tracks: record.tracks, assigned: tracked.filter((name) => !record.tracks.includes(name)),
    ...(record.inventory ? { inventory: record.inventory } : {}),
    ...(keyFingerprint ? { keyFingerprint } : {}),
    ...(record.joinTokenId ? { joinTokenId: record.joinTokenId } : {}),
  };
}
