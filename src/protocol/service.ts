/**
 * The service spec: what a configuration's `settings.service` section says about the program the
 * agent runs from each release. It is stored with the configuration and is part of its id, so a
 * change redeploys. Durations and sizes are written as people write them (`30s`, `256MiB`) and
 * kept as written; `resolveServiceSpec` turns them into numbers for the agent.
 *
 * Also `settings.image`: what an imported container image said about how to run it (ENV,
 * ENTRYPOINT/CMD, WORKDIR, USER), kept for `showconf -v` and as the defaults of a service spec.
 */
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { parseSize } from './size.ts';

/** A string that must parse with `parse`; the parser's message becomes the validation error. */
function checked(parse: (text: string) => unknown) {
  return z.string().superRefine((text, ctx) => {
    try {
      parse(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
    }
  });
}

const durationText = checked(parseDuration);
const sizeText = checked(parseSize);

/** Control characters other than tab: a value with one could end a line of a generated systemd unit. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
/** Text that goes into an argv, the environment or a unit file: no control characters. */
const plainText = (max: number) => z.string().max(max).refine((text) => !CONTROL.test(text), { message: 'must not contain control characters (newline, carriage return, NUL, …)' });

/** A path inside the release: relative, no `..` component, no control characters. */
const releasePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((text) => !CONTROL.test(text), { message: 'must not contain control characters (newline, carriage return, NUL, …)' })
  .refine((text) => !text.startsWith('/') && !text.split('/').includes('..'), {
    message: 'must be a path inside the release: relative, without ".."',
  });

/** Signals a service may be stopped with. */
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const;

/** How the agent checks that a service is healthy. Exactly one of `http`, `tcp`, `command`. */
export const HealthCheckSchema = z
  .object({
    /** HTTP GET; healthy on a 2xx or 3xx status. Loopback URLs only make sense here. */
    http: z.url({ protocol: /^https?$/ }).optional(),
    /** TCP connect to this port (on `host`, default 127.0.0.1). */
    tcp: z.object({ port: z.number().int().min(1).max(65535), host: z.string().min(1).default('127.0.0.1') }).optional(),
    /** A command run from the release (argv, no shell); healthy on exit status 0. */
    command: z.array(plainText(65536)).min(1).optional(),
    /** Time between checks. */
    interval: durationText.default('5s'),
    /** One check failing to answer within this counts as a failure. */
    timeout: durationText.default('2s'),
    /** After (re)start, the service must pass a check within this, or it is unhealthy. */
    within: durationText.default('60s'),
    /** Consecutive failures after which a running service counts as unhealthy. */
    failures: z.number().int().min(1).max(100).default(3),
  })
  .strict()
  .refine((check) => [check.http, check.tcp, check.command].filter((kind) => kind !== undefined).length === 1, {
    message: 'a health check needs exactly one of http, tcp or command',
  });

/** The service section of a configuration's settings. */
export const ServiceSpecSchema = z
  .object({
    /** `process`: a supervised child process group (default); `systemd`: a generated unit. */
    runtime: z.enum(['process', 'systemd']).default('process'),
    /** The program, relative to the release root. */
    command: releasePath,
    args: z.array(plainText(65536)).max(1024).default([]),
    /** Extra environment; the service also gets PATH, HOME, LANG and STRATA_* variables. */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment names are letters, digits and _'), plainText(65536)).default({}),
    /** Working directory, relative to the release root (default: the root). */
    workdir: releasePath.optional(),
    /** User to run as (name or uid); the agent must be root to switch. */
    user: plainText(64).min(1).optional(),
    restart: z
      .object({
        policy: z.enum(['always', 'on-failure', 'never']).default('always'),
        /** First restart delay; doubles per consecutive failure, capped by `maxBackoff`. */
        backoff: durationText.default('1s'),
        maxBackoff: durationText.default('1m'),
      })
      .strict()
      .prefault({}),
    stop: z
      .object({
        signal: z.enum(STOP_SIGNALS).default('SIGTERM'),
        /** Time between the stop signal and SIGKILL. */
        grace: durationText.default('30s'),
      })
      .strict()
      .prefault({}),
    health: HealthCheckSchema.optional(),
    /** Resource limits, applied where the runtime supports them (systemd: all; process: memory via RLIMIT_AS is not used, nofile only). */
    limits: z
      .object({
        memory: sizeText.optional(),
        /** CPU quota in cores, e.g. 0.5. */
        cpu: z.number().positive().max(1024).optional(),
        tasks: z.number().int().positive().optional(),
        nofile: z.number().int().positive().optional(),
      })
      .strict()
      .prefault({}),
    /** A new release whose service never becomes healthy: switch back and restart the old one, or stay failed. */
    onFailure: z.enum(['rollback', 'stay']).default('rollback'),
  })
  .strict();

/** A service spec as written (defaults not yet applied). */
export type ServiceSpecInput = z.input<typeof ServiceSpecSchema>;
/** A service spec with defaults applied, as stored in `settings.service`. */
export type ServiceSpec = z.output<typeof ServiceSpecSchema>;

/** What an imported image said about running it (`settings.image`). */
export const ImageConfigSchema = z
  .object({
    /** The image reference it came from, e.g. `nginx:1.27`. */
    ref: z.string().optional(),
    env: z.record(z.string(), z.string()).default({}),
    entrypoint: z.array(z.string()).default([]),
    cmd: z.array(z.string()).default([]),
    workdir: z.string().optional(),
    user: z.string().optional(),
  })
  .strict();

/** The image section of a configuration's settings. */
export type ImageConfig = z.output<typeof ImageConfigSchema>;
