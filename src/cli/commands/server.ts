/** `strata server`: run the server on the embedded store, or as a replica on a NATS store. */
import type { Command } from 'commander';
import { ServerConfigSchema } from '../../server/config.ts';
import { UsageError, type CliContext } from '../context.ts';
import { collect, examples } from './shared.ts';
import { reexecWithSmallYoungGeneration } from '../../lib/heap-flags.ts';

/** Registers `server`. */
export function registerServer(program: Command, context: CliContext): void {
  const command = program.command('server')
    .description('run the Strata server (registry, API, agent channel) on the embedded SQLite store, or as one of several replicas on NATS JetStream')
    .option('--data <dir>', 'data directory (env STRATA_DATA)', context.env['STRATA_DATA'] ?? '.strata/data')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:7443')
    .option('--insecure-http', 'serve plain HTTP instead of TLS (tokens travel in clear text)')
    .option('--tls-san <host>', 'extra host name or IP for the server certificate (repeatable)', collect)
    .option('--max-upload <size>', 'largest upload accepted', '10GiB')
    .option('--max-archive-entries <n>', 'most entries an uploaded archive may have', '1000000')
    .option('--max-unpacked <size>', 'largest total unpacked size of an uploaded archive', '64GiB')
    .option('--max-versions <n>', 'versions kept per component by retention (never one in use)', '10')
    .option('--retention-interval <duration>', 'how often retention runs', '10m')
    .option('--upload-grace <duration>', 'how long an unreferenced upload is kept before it is collected', '30m')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', context.env['STRATA_LOG_LEVEL'] ?? 'info')
    .option('--store <kind>', 'sqlite (embedded, one server) or nats (shared by any number of replicas)', 'sqlite')
    .option('--nats <url>', 'NATS server URL (repeatable, or comma-separated); the replicas also talk to each other there', (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((v) => v.trim()).filter((v) => v !== '')])
    .option('--nats-creds <file>', 'NATS credentials file (JWT and seed)')
    .option('--nats-user <user>', 'NATS user name')
    .option('--nats-password-file <file>', 'file holding the NATS password (never on the command line)')
    .option('--nats-ca <file>', 'CA certificate to verify the NATS servers (PEM)')
    .option('--nats-cert <file>', 'client certificate for NATS mutual TLS (PEM)')
    .option('--nats-key <file>', 'client key for NATS mutual TLS (PEM)')
    .option('--nats-replicas <n>', 'replicas of every NATS stream and bucket: 1, or 3 on a cluster', '1')
    .option('--nats-prefix <name>', 'prefix of every NATS stream, bucket and subject', 'strata')
    .action(async (options: Record<string, unknown>) => {
      reexecWithSmallYoungGeneration('server');
      const parsed = ServerConfigSchema.safeParse({ ...options, tlsSan: options['tlsSan'] ?? [], nats: options['nats'] ?? [] });
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new UsageError(`--${issue.path.join('.').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${issue.message}`);
      }
      // Loaded here so that every other command starts without the server's dependencies.
      const { runServer } = await import('../../server/main.ts');
      const server = await runServer(parsed.data, { stdout: context.stdout });
      server.lifecycle.handleSignals();
      await new Promise<void>((resolve) => server.lifecycle.onShutdown(async () => resolve()));
    });
  examples(command, [
    'strata server', 'strata server --data /var/lib/strata --listen 0.0.0.0:7443 --tls-san deploy.example.net',
    'strata server --store nats --nats nats://10.0.0.1:4222,nats://10.0.0.2:4222 --nats-replicas 3 --nats-creds /etc/strata/nats.creds',
  ]);
}
