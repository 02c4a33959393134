/**
 * Turns a configuration's `settings.service` into what the agent runs: durations in
 * milliseconds, the program and working directory resolved inside the release (through
 * symlinks too — nothing outside the release root may run), the environment built from the
 * spec and a short list of the agent's own variables, and the user as uid/gid.
 */
import { realpath, stat } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseDuration } from '../../protocol/duration.ts';
import { parseSize } from '../../protocol/size.ts';
import { ServiceSpecSchema, type ServiceSpec } from '../../protocol/service.ts';

/** Variables of the agent's own environment a service inherits (the spec's `env` wins over them). */
const INHERITED = ['PATH', 'HOME', 'LANG'] as const;

/** A health check with its durations in milliseconds. */
export interface ResolvedHealth {
  kind: 'http' | 'tcp' | 'command';
  url?: string;
  host?: string;
  port?: number;
  /** The check program's argv, its program resolved inside the release. */
  argv?: string[];
  intervalMs: number;
  timeoutMs: number;
  withinMs: number;
  failures: number;
}

/** A service ready to run from one release. */
export interface ResolvedService {
  runtime: 'process' | 'systemd';
  /** The release directory it runs from (real path). */
  root: string;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  uid?: number;
  gid?: number;
  user?: string;
  restart: { policy: 'always' | 'on-failure' | 'never'; backoffMs: number; maxBackoffMs: number };
  stop: { signal: NodeJS.Signals; graceMs: number };
  health?: ResolvedHealth;
  limits: { memoryBytes?: number; cpu?: number; tasks?: number; nofile?: number };
  onFailure: 'rollback' | 'stay';
}

/** A service section that cannot run from this release; the message is one line naming the field. */
export class ServiceSpecError extends Error {
  override readonly name = 'ServiceSpecError';
}

/** The service section of settings, validated, or undefined when there is none. */
export function serviceSpecOf(settings: Record<string, unknown> | undefined): ServiceSpec | undefined {
  const raw = settings?.['service'];
  if (raw === undefined || raw === null) return undefined;
  const parsed = ServiceSpecSchema.safeParse(raw);
  if (!parsed.success) throw new ServiceSpecError(`settings.service: ${describeIssue(parsed.error.issues[0])}`);
  return parsed.data;
}

/** One zod issue as `field: message`. */
export function describeIssue(issue: { path: PropertyKey[]; message: string; code?: string; keys?: string[] } | undefined): string {
  if (!issue) return 'invalid';
  const where = issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('').replace(/^\./, '');
  const message = issue.code === 'unrecognized_keys' && issue.keys ? `unknown key ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}` : issue.message;
  return where ? `${where}: ${message}` : message;
}

/** Resolves `relative` inside `root` (following symlinks) and refuses anything outside it. */
export async function insideRelease(root: string, relative: string, field: string): Promise<string> {
  const joined = path.resolve(root, relative);
  let real: string;
  try {
    real = await realpath(joined);
  } catch (error) {
    throw new ServiceSpecError(`${field}: ${relative} does not exist in the release (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (real !== root && !real.startsWith(root + path.sep)) throw new ServiceSpecError(`${field}: ${relative} leads outside the release`);
  return real;
}

/** uid and gid of a user name or number, from the system's user database (`id`, argv). */
function lookupUser(user: string): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', '--', user], { encoding: 'utf8', timeout: 5000 }).trim());
    const gid = Number(execFileSync('id', ['-g', '--', user], { encoding: 'utf8', timeout: 5000 }).trim());
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
  } catch {
    // Falls through to the one-line error below.
  }
  throw new ServiceSpecError(`user: no such user ${JSON.stringify(user)} on this machine`);
}

/** Resolves a spec against a release directory; `identity` names the configuration and release for STRATA_* variables. */
export async function resolveService(
  spec: ServiceSpec,
  releaseDir: string,
  identity: { configuration: string; revision: number; releaseId: string },
  agentEnv: Record<string, string | undefined>,
): Promise<ResolvedService> {
  const root = await realpath(releaseDir);
  const program = await insideRelease(root, spec.command, 'command');
  if (!(await stat(program)).isFile()) throw new ServiceSpecError(`command: ${spec.command} is not a file`);
  const cwd = spec.workdir === undefined ? root : await insideRelease(root, spec.workdir, 'workdir');
  if (!(await stat(cwd)).isDirectory()) throw new ServiceSpecError(`workdir: ${spec.workdir} is not a directory`);
  const env: Record<string, string> = {};
  for (const name of INHERITED) {
    const value = agentEnv[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, spec.env, {
    STRATA_CONFIG: identity.configuration,
    STRATA_REVISION: String(identity.revision),
    STRATA_RELEASE: root,
    STRATA_RELEASE_ID: identity.releaseId,
  });
  let user: { uid: number; gid: number } | undefined;
  if (spec.user !== undefined) {
    user = lookupUser(spec.user);
    if (process.getuid?.() !== 0 && user.uid !== process.getuid?.()) throw new ServiceSpecError(`user: the agent runs as uid ${process.getuid?.()} and cannot switch to ${spec.user}; run it as root`);
  }
  const health = spec.health === undefined ? undefined : await resolveHealth(spec.health, root);
  const limits = spec.limits;
  return {
    runtime: spec.runtime, root, argv: [program, ...spec.args], cwd, env,
    ...(user ? { uid: user.uid, gid: user.gid, user: spec.user! } : {}),
    restart: { policy: spec.restart.policy, backoffMs: parseDuration(spec.restart.backoff), maxBackoffMs: parseDuration(spec.restart.maxBackoff) },
    stop: { signal: spec.stop.signal, graceMs: parseDuration(spec.stop.grace) },
    ...(health ? { health } : {}),
    limits: {
      ...(limits.memory !== undefined ? { memoryBytes: parseSize(limits.memory) } : {}),
      ...(limits.cpu !== undefined ? { cpu: limits.cpu } : {}),
      ...(limits.tasks !== undefined ? { tasks: limits.tasks } : {}),
      ...(limits.nofile !== undefined ? { nofile: limits.nofile } : {}),
    },
    onFailure: spec.onFailure,
  };
}

/** The health check with durations as numbers; a command check's program must be inside the release (the whitelist). */
async function resolveHealth(check: NonNullable<ServiceSpec['health']>, root: string): Promise<ResolvedHealth> {
  const timing = {
    intervalMs: parseDuration(check.interval), timeoutMs: parseDuration(check.timeout),
    withinMs: parseDuration(check.within), failures: check.failures,
  };
  if (check.http !== undefined) return { kind: 'http', url: check.http, ...timing };
  if (check.tcp !== undefined) return { kind: 'tcp', host: check.tcp.host, port: check.tcp.port, ...timing };
  const [program, ...args] = check.command!;
  if (program!.startsWith('/') || program!.split('/').includes('..')) throw new ServiceSpecError('health.command: the program must be a path inside the release: relative, without ".."');
  return { kind: 'command', argv: [await insideRelease(root, program!, 'health.command'), ...args], ...timing };
}
