/** `strata agent` (run the agent, or converge once) and `strata agent rollback` (local, no network). */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { formatDuration, parseDuration } from '../../protocol/duration.ts';
import { parseSize } from '../../protocol/size.ts';
import { LabelsSchema } from '../../protocol/agent.ts';
import { nameProblem } from '../../protocol/names.ts';
import { printJson, println, UsageError, UserError, type CliContext } from '../context.ts';
import { collect, examples } from './shared.ts';
import { leanStart } from '../../lib/lean-start.ts';
import { MIN_RETRY_MS } from '../../lib/backoff.ts';
import { isLocalOnly, parseMetricsListen, type MetricsListen } from '../../agent/metrics/listen-address.ts';

/** Parses `k=v,k2=v2` into labels, refusing malformed ones. */
export function parseLabels(text: string | undefined): Record<string, string> {
  if (!text) return {};
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`invalid label ${JSON.stringify(pair)}: write labels as key=value,key2=value2`);
    labels[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const parsed = LabelsSchema.safeParse(labels);
  if (!parsed.success) throw new UsageError(`invalid labels: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

function option<T>(what: string, parse: (text: string) => T, text: string): T {
  try {
    return parse(text);
  } catch (error) {
    throw new UsageError(`${what}: ${(error as Error).message}`);
  }
}

/**
 * A duration flag with a floor: a zero poll interval or retry wait would turn the agent's loops
 * into busy loops against the server.
 */
function durationAtLeast(what: string, text: string, minMs: number): number {
  const ms = option(what, parseDuration, text);
  if (ms < minMs) throw new UsageError(`${what} must be at least ${formatDuration(minMs)}`);
  return ms;
}

/** The metrics flags: the interval, and the endpoint's address and token, checked before anything starts. */
async function metricsOptions(options: Record<string, string | string[] | boolean | undefined>): Promise<{ intervalMs: number; listen?: MetricsListen; token?: string }> {
  const intervalMs = durationAtLeast('--metrics-interval', options['metricsInterval'] as string, 1000);
  const listenText = options['metricsListen'] as string | undefined;
  const tokenFile = options['metricsTokenFile'] as string | undefined;
  if (listenText === undefined) {
    if (tokenFile !== undefined) throw new UsageError('--metrics-token-file needs --metrics-listen');
    return { intervalMs };
  }
  const listen = option('--metrics-listen', parseMetricsListen, listenText);
  let token: string | undefined;
  if (tokenFile !== undefined) {
    try {
      token = (await readFile(tokenFile, 'utf8')).trim();
    } catch (error) {
      throw new UserError(`cannot read --metrics-token-file ${tokenFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    if (token.length < 16 || /\s/.test(token)) throw new UsageError(`--metrics-token-file ${tokenFile}: the token must be one word of at least 16 characters`);
  }
  if (!isLocalOnly(listen) && token === undefined) {
    throw new UsageError(`--metrics-listen ${listenText} is not a loopback address or Unix socket: give --metrics-token-file FILE to require a token there`);
  }
  return { intervalMs, listen, ...(token === undefined ? {} : { token }) };
}

/** Registers `agent` and `agent rollback`. */
export function registerAgent(program: Command, context: CliContext): void {
  const command = program.command('agent')
    .description('run the agent: enroll once, then keep the tracked configurations deployed in --dir and report back')
    .option('--dir <dir>', 'the agent directory (identity, cache, releases)', context.env['STRATA_AGENT_DIR'] ?? '/var/lib/strata-agent')
    .option('--server <url>', 'server URL, or several replicas comma-separated, tried in turn (first start; later starts remember the first)', context.env['STRATA_SERVER'])
    .option('--join-token <token>', 'join token for the first start (env STRATA_JOIN_TOKEN)', context.env['STRATA_JOIN_TOKEN'])
    .option('--join-token-file <file>', 'read the join token from a file')
    .option('--name <node>', 'this agent\'s name (first start)')
    .option('--track <configuration>', 'a configuration to keep deployed (repeatable)', collect, [] as string[])
    .option('--labels <k=v,...>', 'labels selectors match, e.g. role=web,region=eu')
    .option('--hook <path>', 'program run after unpacking, before switching (deploy-tools environment)')
    .option('--hook-timeout <duration>', 'how long the hook may run before it is killed', '10m')
    .option('--poll <duration>', 'how often to re-read the desired state in full', '30s')
    .option('--keep <n>', 'releases to keep per configuration for instant rollback (the one the current release replaced always stays too)', '3')
    .option('--max-files <n>', 'most files a release may unpack to', '1000000')
    .option('--max-unpacked <size>', 'largest total size a release may unpack to', '64GiB')
    .option('--retry-base <duration>', 'first wait before retrying a failed deploy (it doubles, with jitter)', '5s')
    .option('--retry-cap <duration>', 'longest wait between retries of a failed deploy', '5m')
    .option('--config <file>', 'the agent\'s own TOML config: the commands and sync groups orders may use')
    .option('--metrics-interval <duration>', 'how often to sample the machine (CPU, memory, disks, network, services); at least 1s', '10s')
    .option('--metrics-listen <address>', 'serve /metrics and /debug/vars locally: 127.0.0.1:PORT, [::1]:PORT or unix:/path (off by default)')
    .option('--metrics-token-file <file>', 'require this bearer token on the metrics endpoint (needed for a non-loopback address)')
    .option('--once', 'converge once and exit: 0 when every tracked configuration is deployed, 1 otherwise (a deploy failed, nothing is tracked, or the server was unreachable for 20s)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', context.env['STRATA_LOG_LEVEL'] ?? 'info')
    .action(async (options: Record<string, string | string[] | boolean | undefined>) => {
      let agentMain!: typeof import('../../agent/main.ts');
      await leanStart('agent', async () => {
        agentMain = await import('../../agent/main.ts');
      });
      const keep = Number(options['keep']);
      if (!Number.isInteger(keep) || keep < 1) throw new UsageError('--keep must be a whole number of at least 1');
      const maxFiles = Number(options['maxFiles']);
      if (!Number.isInteger(maxFiles) || maxFiles < 1) throw new UsageError('--max-files must be a positive whole number');
      const tracks = options['track'] as string[];
      for (const name of tracks) {
        const problem = nameProblem(name);
        if (problem) throw new UsageError(`--track ${JSON.stringify(name)}: the name ${problem}`);
      }
      const name = options['name'] as string | undefined;
      if (name !== undefined && nameProblem(name)) throw new UsageError(`--name ${JSON.stringify(name)}: the name ${nameProblem(name)}`);
      let joinToken = options['joinToken'] as string | undefined;
      if (options['joinTokenFile']) {
        try {
          joinToken = (await readFile(options['joinTokenFile'] as string, 'utf8')).trim();
        } catch (error) {
          throw new UserError(`cannot read ${options['joinTokenFile']}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
        }
      }
      const configFile = options['config'] as string | undefined;
      const { AgentConfigError, loadAgentConfig } = await import('../../agent/agent-config.ts');
      let agentConfig;
      try {
        agentConfig = configFile ? await loadAgentConfig(path.resolve(configFile)) : undefined;
      } catch (error) {
        if (error instanceof AgentConfigError) throw new UsageError(`--config ${error.message}`);
        throw error;
      }
      const metrics = await metricsOptions(options);
      const retryBaseMs = durationAtLeast('--retry-base', options['retryBase'] as string, MIN_RETRY_MS);
      // The default cap rises to a longer base given alone; a cap given below the base is a mistake.
      const capGiven = command.getOptionValueSource('retryCap') !== 'default';
      const retryCapMs = capGiven
        ? durationAtLeast('--retry-cap', options['retryCap'] as string, retryBaseMs)
        : Math.max(retryBaseMs, option('--retry-cap', parseDuration, options['retryCap'] as string));
      const { runAgent } = agentMain;
      const code = await runAgent({
        dir: path.resolve(options['dir'] as string),
        ...(options['server'] ? { server: options['server'] as string } : {}),
        ...(joinToken ? { joinToken } : {}),
        ...(name ? { name } : {}),
        tracks,
        labels: parseLabels(options['labels'] as string | undefined),
        ...(options['hook'] ? { hook: path.resolve(options['hook'] as string) } : {}),
        hookTimeoutMs: durationAtLeast('--hook-timeout', options['hookTimeout'] as string, 1000),
        pollMs: durationAtLeast('--poll', options['poll'] as string, 1000),
        keep,
        limits: { maxFiles, maxBytes: option('--max-unpacked', parseSize, options['maxUnpacked'] as string) },
        agentEnv: context.env,
        retryBaseMs,
        retryCapMs,
        ...(agentConfig ? { agentConfig } : {}),
        metrics,
        once: Boolean(options['once']),
        logLevel: options['logLevel'] as string,
      });
      context.setExitCode(code);
    });
  examples(command, [
    'strata agent --server https://deploy:7443 --join-token "$(cat join-token)" --name web-1 --track site --dir /var/lib/strata-agent --labels role=web',
    'strata agent --dir /var/lib/strata-agent                      # later starts',
    'strata agent --dir /var/lib/strata-agent --once               # converge once, for scripts',
    'strata agent --dir /var/lib/strata-agent --config /etc/strata/agent.toml   # allow orders: exec commands, sync groups',
    'strata agent --dir /var/lib/strata-agent --metrics-listen 127.0.0.1:9464   # Prometheus /metrics and /debug/vars on loopback',
  ]);

  const rollback = command.command('rollback')
    .description('switch a configuration back to its previous release, locally, without the network')
    .requiredOption('--dir <dir>', 'the agent directory')
    .option('--config <configuration>', 'which configuration (default: the only one)')
    .option('--json', 'print machine-readable JSON')
    .action(async (options: { dir: string; config?: string; json?: boolean }) => {
      const { rollbackConfiguration } = await import('../../agent/local-rollback.ts');
      const result = await rollbackConfiguration(path.resolve(options.dir), options.config);
      if (options.json) printJson(context.stdout, result);
      else println(context.stdout, `${result.configuration}: current is now ${result.to.slice(0, 12)} (was ${result.from.slice(0, 12)})`);
    });
  examples(rollback, ['strata agent rollback --dir /var/lib/strata-agent --config site']);

  const stopServices = command.command('stop-services')
    .description('stop the services the agent left running (it never stops them when it exits); the agent must not be running')
    .requiredOption('--dir <dir>', 'the agent directory')
    .option('--config <configuration>', 'only this configuration\'s service')
    .option('--json', 'print machine-readable JSON')
    .action(async (options: { dir: string; config?: string; json?: boolean }) => {
      const { stopServices: stop } = await import('../../agent/service/stop-services.ts');
      const { createLogger } = await import('../../lib/logger.ts');
      const stopped = await stop(path.resolve(options.dir), createLogger({ level: 'warn' }), options.config);
      if (options.json) printJson(context.stdout, stopped);
      else for (const entry of stopped) println(context.stdout, `${entry.configuration}: ${entry.pid === undefined ? 'not running' : `stopped pid ${entry.pid}`}`);
    });
  examples(stopServices, ['strata agent stop-services --dir /var/lib/strata-agent', 'strata agent stop-services --dir /var/lib/strata-agent --config site']);
}
