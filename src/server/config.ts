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

const duration = parsed(parseDuration);
const size = parsed(parseSize);
const listen = parsed(parseListen);

/** The schema of `strata server`'s options, with their defaults. */
export const ServerConfigSchema = z.object({
  data: z.string().min(1).default('.strata/data'),
  listen: listen.prefault('127.0.0.1:7443'),
  insecureHttp: z.boolean().default(false),
  tlsSan: z.array(z.string().min(1)).default([]),
  maxUpload: size.prefault('10GiB'),
  maxJson: size.prefault('1MiB'),
  maxArchiveEntries: z.coerce.number().int().positive().default(1_000_000),
  maxUnpacked: size.prefault('64GiB'),
  maxVersions: z.coerce.number().int().positive().default(10),
  retentionInterval: duration.prefault('10m'),
  uploadGrace: duration.prefault('30m'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // The store backend; with `nats`, the replicas also talk to each other over the same NATS servers.
  store: z.enum(['sqlite', 'nats']).default('sqlite'),
  nats: z.array(z.string().regex(/^(nats|tls):\/\/\S+$/, 'expected a URL like nats://host:4222')).max(32).default([]),
  natsCreds: z.string().min(1).optional(),
  natsUser: z.string().min(1).optional(),
  natsPasswordFile: z.string().min(1).optional(),
  natsCa: z.string().min(1).optional(),
  natsCert: z.string().min(1).optional(),
  natsKey: z.string().min(1).optional(),
  natsReplicas: z.coerce.number().int().min(1).max(5).default(1),
  natsPrefix: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, "-" and "_" only').default('strata'),
}).refine((config) => config.store !== 'nats' || config.nats.length > 0, { path: ['nats'], message: '--store nats needs at least one --nats URL' })
  .refine((config) => (config.natsPasswordFile === undefined) || config.natsUser !== undefined, { path: ['natsPasswordFile'], message: 'needs --nats-user' });

/** The parsed server configuration. */
export type ServerConfig = z.output<typeof ServerConfigSchema>;
