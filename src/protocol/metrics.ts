/**
 * The compact metrics summary an agent sends on its channel every sample interval (a few hundred
 * bytes), and the shapes of the server's metrics views (`GET /v1/agents/{name}/metrics`,
 * `GET /v1/fleet/top`). Versioned by `v` so a server can refuse a summary it cannot read.
 * Rates are per second over the last sample interval; sizes are bytes; cpu is percent of all cores.
 */
import { z } from 'zod';

/** The summary format version. */
export const METRICS_SUMMARY_VERSION = 1;

/** Most services one summary lists. */
export const MAX_SUMMARY_SERVICES = 32;

const Bytes = z.number().nonnegative();
const Used = z.object({ used: Bytes, total: Bytes });
const Disk = Used.extend({ mount: z.string().max(256) });

/** One supervised service in a summary. */
export const ServiceSummarySchema = z.object({
  name: z.string().max(128),
  state: z.string().max(32),
  /** Percent of one core over the last interval; absent when it was not running. */
  cpu: z.number().nonnegative().optional(),
  rss: Bytes.optional(),
  restarts: z.number().int().nonnegative(),
});

/** The summary of one sample. */
export const MetricsSummarySchema = z.object({
  v: z.literal(METRICS_SUMMARY_VERSION),
  at: z.string().max(40),
  /** Interval the rates and cpu are measured over. */
  intervalMs: z.number().int().positive(),
  /** Percent busy over all cores. */
  cpu: z.number().min(0).max(100),
  cores: z.number().int().positive(),
  load: z.tuple([z.number(), z.number(), z.number()]),
  mem: Used,
  swap: Used,
  /** `/` and the fullest real mount (by fraction used); absent when nothing is mounted there. */
  disk: z.object({ root: Disk.optional(), fullest: Disk.optional() }),
  /** Bytes per second over every interface except loopback. */
  net: z.object({ rx: Bytes, tx: Bytes }),
  /** Bytes per second read and written over every disk device. */
  io: z.object({ read: Bytes, write: Bytes }),
  /** Seconds since the machine booted. */
  uptime: z.number().nonnegative(),
  services: z.array(ServiceSummarySchema).max(MAX_SUMMARY_SERVICES),
});
/** One metrics summary. */
export type MetricsSummary = z.infer<typeof MetricsSummarySchema>;

/** GET /v1/agents/{name}/metrics: recent summaries, oldest first. */
export const AgentMetricsSchema = z.object({
  agent: z.string(),
  online: z.boolean(),
  /** How many summaries the server keeps per agent now (in memory, shared by the replicas; fewer in a large fleet). */
  keep: z.number().int(),
  history: z.array(MetricsSummarySchema),
});
/** An agent's metrics history. */
export type AgentMetrics = z.infer<typeof AgentMetricsSchema>;

/** One row of GET /v1/fleet/top. */
export const TopRowSchema = z.object({
  name: z.string(),
  labels: z.record(z.string(), z.string()),
  online: z.boolean(),
  /** The latest summary this server holds, or null (never heard since it started). */
  metrics: MetricsSummarySchema.nullable(),
  configurations: z.array(z.object({ configuration: z.string(), phase: z.string() })),
});
/** GET /v1/fleet/top. */
export const FleetTopSchema = z.object({ agents: z.array(TopRowSchema) });
/** The fleet's latest metrics. */
export type FleetTop = z.infer<typeof FleetTopSchema>;
/** One agent's row in the fleet's latest metrics. */
export type TopRow = z.infer<typeof TopRowSchema>;
