/**
 * The server's configuration, parsed once by a schema from flags (and STRATA_* variables the
 * CLI maps onto them) and passed down as one object.
 */
import { z } from 'zod';
import { parseDuration } from '../protocol/duration.ts';
import { parseSize } from '../protocol/size.ts';

/** A `host:port` or `[v6]:port` listen address. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `HOST:PORT` (or `[::1]:PORT`); throws an Error fit for a user. */
export function parseListen(text: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new Error(`invalid listen address ${JSON.stringify(text)}: write it like 127.0.0.1:7443 or [::1]:7443`);
  return { host: (match[1] ?? match[2])!, port };
}

/** A string option parsed by `parse`, whose thrown Error becomes the option's validation message. */
function parsed<T>(parse: (text: string) => T) {
  return z.string().transform((text, ctx) => {
    try {
      return parse(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });
}

/** A comma-separated list of NATS server URLs (`nats://host:port`, `tls://…`, or bare `host:port`). */
export function parseNatsServers(text: string): string[] {
  const servers = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (servers.length === 0) throw new Error('name at least one NATS server, like nats://10.0.0.1:4222');
  for (const server of servers) {
    if (!/^((nats|tls|wss?):\/\/)?([^\s:/@]+@)?(\[[0-9a-fA-F:.]+\]|[^\s:/@]+)(:\d{1,5})?$/.test(server)) {
      throw new Error(`invalid NATS server ${JSON.stringify(server)}: write it like nats://10.0.0.1:4222`);
    }
  }
  return servers;
}

const duration = parsed(parseDuration);
const size = parsed(parseSize);
const listen = parsed(parseListen);

/** The schema of `strata server`'s options, with their defaults. */
export const ServerConfigSchema = z.object({
  data: z.string().min(1).default('.strata/data'),
  listen: listen.prefault('127.0.0.1:7443'),
  insecureHttp: z.boolean().default(false),
  metricsPublic: z.boolean().default(false),
  tlsSan: z.array(z.string().min(1)).default([]),
  maxUpload: size.prefault('10GiB'),
  maxJson: size.prefault('1MiB'),
  maxArchiveEntries: z.coerce.number().int().positive().default(1_000_000),
  maxUnpacked: size.prefault('64GiB'),
  maxVersions: z.coerce.number().int().positive().default(10),
  retentionInterval: duration.prefault('10m'),
  uploadGrace: duration.prefault('30m'),
  sshListen: listen.optional(),
  sshOperatorKeys: z.string().min(1).optional(),
  sshAgentKeys: z.string().min(1).optional(),
  sshDeadline: duration.prefault('30m'),
  sshHandshakeTimeout: duration.prefault('20s'),
  sshMaxSessions: z.coerce.number().int().positive().default(64),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  store: z.enum(['sqlite', 'nats']).default('sqlite'),
  nats: parsed(parseNatsServers).optional(),
  natsCreds: z.string().min(1).optional(),
  natsUser: z.string().min(1).optional(),
  natsPasswordFile: z.string().min(1).optional(),
  natsCa: z.string().min(1).optional(),
  natsCert: z.string().min(1).optional(),
  natsKey: z.string().min(1).optional(),
  natsReplicas: z.coerce.number().int().min(1).max(5).default(1),
  natsBlobCache: size.prefault('8GiB'),
  natsPrefix: z.string().regex(/^[A-Za-z0-9_-]+$/, 'use letters, digits, "-" and "_"').default('strata'),
}).superRefine((config, ctx) => {
  const natsOption = (['nats', 'natsCreds', 'natsUser', 'natsPasswordFile', 'natsCa', 'natsCert', 'natsKey'] as const).find((key) => config[key] !== undefined);
  if (config.store === 'nats' && config.nats === undefined) ctx.addIssue({ code: 'custom', path: ['nats'], message: '--store nats needs the servers to use, like --nats nats://10.0.0.1:4222' });
  if (config.store === 'sqlite' && natsOption !== undefined) ctx.addIssue({ code: 'custom', path: ['store'], message: `--${natsOption.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is for the NATS store: add --store nats` });
  if (config.natsCreds !== undefined && config.natsUser !== undefined) ctx.addIssue({ code: 'custom', path: ['natsCreds'], message: 'use either --nats-creds or --nats-user, not both' });
  if ((config.natsUser === undefined) !== (config.natsPasswordFile === undefined)) ctx.addIssue({ code: 'custom', path: ['natsUser'], message: '--nats-user and --nats-password-file go together' });
  if ((config.natsCert === undefined) !== (config.natsKey === undefined)) ctx.addIssue({ code: 'custom', path: ['natsCert'], message: '--nats-cert and --nats-key go together' });
});

/** The parsed server configuration. */
export type ServerConfig = z.output<typeof ServerConfigSchema>;
