/** `strata server`: run the server on the embedded store, or on NATS JetStream with --store nats. */
import type { Command } from 'commander';
import { ServerConfigSchema } from '../../server/config.ts';
import { UsageError, type CliContext } from '../context.ts';
import { collect, examples } from './shared.ts';
import { leanStart } from '../../lib/lean-start.ts';
import { addNatsAuthOptions } from '../../server/nats-auth.ts';

/** Registers `server`. */
export function registerServer(program: Command, context: CliContext): void {
  const command = addNatsAuthOptions(program.command('server')
    .description('run the Strata server (registry, API, agent channel) on the embedded SQLite store or on NATS JetStream')
    .option('--data <dir>', 'data directory (env STRATA_DATA)', context.env['STRATA_DATA'] ?? '.strata/data')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:7443')
    .option('--insecure-http', 'serve plain HTTP instead of TLS (tokens travel in clear text)')
    .option('--metrics-public', 'serve GET /metrics without a token to anyone who can reach the listen address')
    .option('--tls-san <host>', 'extra host name or IP for the server certificate (repeatable)', collect)
    .option('--max-upload <size>', 'largest upload accepted', '10GiB')
    .option('--max-archive-entries <n>', 'most entries an uploaded archive may have', '1000000')
    .option('--max-unpacked <size>', 'largest total unpacked size of an uploaded archive', '64GiB')
    .option('--max-versions <n>', 'versions kept per component by retention (never one in use)', '10')
    .option('--retention-interval <duration>', 'how often retention runs', '10m')
    .option('--upload-grace <duration>', 'how long an unreferenced upload is kept before it is collected', '30m')
    .option('--ssh-listen <host:port>', 'also serve the deploy-tools SSH front (console, SFTP) on this address')
    .option('--ssh-operator-keys <file>', 'authorized_keys of operators (any SSH user but deploy-agent)')
    .option('--ssh-agent-keys <file>', 'authorized_keys of deploy-agent')
    .option('--ssh-deadline <duration>', 'lifetime of an SSH connection', '30m')
    .option('--ssh-handshake-timeout <duration>', 'time an SSH client has to authenticate', '20s')
    .option('--ssh-max-sessions <n>', 'SSH connections open at once', '64')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', context.env['STRATA_LOG_LEVEL'] ?? 'info')
    .option('--store <kind>', 'where state lives: sqlite (embedded, under --data; one server) or nats (NATS JetStream; several servers can share it)', context.env['STRATA_STORE'] ?? 'sqlite')
    .option('--nats <urls>', 'with --store nats: NATS servers, comma-separated; list every cluster node, e.g. nats://10.0.0.1:4222,nats://10.0.0.2:4222 (env STRATA_NATS)', context.env['STRATA_NATS']))
    .option('--nats-replicas <n>', 'copies JetStream keeps of every stream and bucket: 1 for a single NATS server, 3 for a three-node cluster', '1')
    .option('--nats-prefix <prefix>', 'prefix of every stream, bucket and subject name, so several Strata installations can share one NATS account', 'strata')
    .option('--nats-blob-cache <size>', 'with --store nats: bytes of local blob copies this replica keeps under --data to serve downloads from (0: stream every download from NATS)', '8GiB')
    .action(async (options: Record<string, unknown>) => {
      // Loaded here so that every other command starts without the server's dependencies.
      let serverMain!: typeof import('../../server/main.ts');
      await leanStart('server', async () => {
        serverMain = await import('../../server/main.ts');
      });
      const parsed = ServerConfigSchema.safeParse({ ...options, tlsSan: options['tlsSan'] ?? [] });
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new UsageError(`--${issue.path.join('.').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${issue.message}`);
      }
      const { runServer } = serverMain;
      const server = await runServer(parsed.data, { stdout: context.stdout });
      server.lifecycle.handleSignals();
      await new Promise<void>((resolve) => server.lifecycle.onShutdown(async () => resolve()));
    });
  examples(command, [
    'strata server',
    'strata server --data /var/lib/strata --listen 0.0.0.0:7443 --tls-san deploy.example.net',
    'strata server --ssh-listen 0.0.0.0:2022 --ssh-operator-keys operator.keys --ssh-agent-keys service.keys',
    'strata server --store nats --nats nats://127.0.0.1:4222',
    'strata server --store nats --nats nats://n1:4222,nats://n2:4222,nats://n3:4222 --nats-replicas 3 --nats-creds /etc/strata/nats.creds',
    'strata server --ssh-listen 0.0.0.0:2022 --ssh-operator-keys operator.keys --ssh-agent-keys service.keys',
  ]);
}
