/**
 * `strata quickstart` (what `npm start` runs): a server on the embedded store and one agent in
 * the same process, tracking a sample configuration, so a newcomer sees a deploy happen and can
 * make the next one by hand.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { println, type CliContext } from '../context.ts';
import { examples } from './shared.ts';

const SAMPLE = fileURLToPath(new URL('../../../examples/hello', import.meta.url));

/** Reads `export KEY=value` lines. */
function parseEnvFile(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/^(?:export )?(\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** Registers `quickstart`. */
export function registerQuickstart(program: Command, context: CliContext): void {
  const command = program.command('quickstart')
    .description('run a server and one agent together, deploying a sample configuration (what npm start runs)')
    .option('--data <dir>', 'where the server and the agent keep their files', '.strata')
    .option('--listen <host:port>', 'address of the server', '127.0.0.1:7443')
    .action(async (options: { data: string; listen: string }) => {
      const { ServerConfigSchema } = await import('../../server/config.ts');
      const { runServer } = await import('../../server/main.ts');
      const { Agent } = await import('../../agent/agent.ts');
      const { createLogger } = await import('../../lib/logger.ts');
      const { runCli } = await import('../run.ts');
      const root = path.resolve(options.data);
      const dataDir = path.join(root, 'data');
      const silent = { write: () => true } as unknown as CliContext['stdout'];
      const quiet: CliContext = { ...context, stdout: silent, stderr: silent };
      const server = await runServer(ServerConfigSchema.parse({ data: dataDir, listen: options.listen, logLevel: 'warn' }), { stdout: quiet.stdout });
      const env = { ...context.env, ...parseEnvFile(await readFile(path.join(dataDir, 'admin.env'), 'utf8')) };
      const cli = (args: string[]): Promise<number> => runCli(args, { ...quiet, env });
      if ((await cli(['showconf', '--name', 'hello'])) !== 0) {
        await cli(['push', SAMPLE, '--name', 'hello', '--version', 'v1']);
        await cli(['addconf', '--name', 'hello', '--layer', 'hello:v1']);
      }
      const agentDir = path.join(root, 'agent');
      const agent = new Agent({
        dir: agentDir, server: server.url, name: 'demo-agent', tracks: ['hello'], labels: { role: 'demo' },
        joinToken: (await readFile(path.join(dataDir, 'join-token'), 'utf8')).trim(),
        hookTimeoutMs: 60_000, pollMs: 30_000, keep: 3, limits: { maxFiles: 100_000, maxBytes: 1024 ** 3 },
        agentEnv: context.env, log: createLogger({ level: 'warn', name: 'strata-agent' }),
      });
      server.lifecycle.onShutdown(() => agent.shutdown());
      await agent.start();
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && !agent.statuses().some((s) => s.phase === 'deployed')) await new Promise((r) => setTimeout(r, 100));
      const status = agent.statuses()[0];
      const current = path.join(agentDir, 'hello', 'current');
      println(context.stdout, [
        `Strata server on ${server.url} (data in ${dataDir}); CA fingerprint ${server.caFingerprint ?? '-'}`,
        status?.phase === 'deployed'
          ? `Agent demo-agent deployed configuration "hello" revision ${status.currentRevision} into ${current}`
          : `Agent demo-agent is ${status?.phase ?? 'starting'}${status?.error ? `: ${status.error.message}` : ''}`,
        '',
        'Now, in another terminal (from this checkout):',
        `  source ${path.join(dataDir, 'admin.env')}`,
        '  export PATH="$PWD/bin:$PATH"',
        `  cat ${path.join(current, 'index.html')}`,
        '  cp -r examples/hello /tmp/hello && echo "<h1>v2</h1>" > /tmp/hello/index.html',
        '  strata push /tmp/hello --name hello --version v2',
        '  strata bumpconf --name hello --component hello      # the agent switches within a second',
        '  strata agents',
        '  strata status --name hello',
        '',
        'Stop with Ctrl-C.',
      ].join('\n'));
      server.lifecycle.handleSignals();
      await new Promise<void>((resolve) => server.lifecycle.onShutdown(async () => resolve()));
    });
  examples(command, ['strata quickstart --data /tmp/strata-demo --listen 127.0.0.1:8443', 'strata quickstart                # what npm start runs: .strata/ on 127.0.0.1:7443']);
}
