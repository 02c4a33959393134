/**
 * `strata server`: reads the configuration, opens the store, sets up TLS, builds the app,
 * listens, keeps retention running, and shuts down cleanly on a signal.
 */
import { access, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createLogger, type Logger } from '../lib/logger.ts';
import { Lifecycle } from '../lib/lifecycle.ts';
import { createStore, type StoreOptions } from '../store/create-store.ts';
import { applyRetention } from '../core/retention.ts';
import { ensureServerTls } from './tls.ts';
import { buildApp } from './build-app.ts';
import { bootstrap, bootstrapFiles } from './bootstrap.ts';
import type { ServerConfig } from './config.ts';
import { STRATA_VERSION } from '../lib/version.ts';
import { createClusterBus } from './cluster/create-bus.ts';
import { Registry } from '../core/registry.ts';
import { StrataError } from '../core/errors.ts';
import { loadSshKeys, startSshFront, type SshFront } from '../ssh/server.ts';
import { natsAuth } from './nats-auth.ts';

/** A running server. */
export interface RunningServer {
  url: string;
  caFingerprint?: string;
  lifecycle: Lifecycle;
}

/** The URL clients should use for a listen address (wildcards become loopback). */
function clientUrl(scheme: string, host: string, port: number): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `${scheme}://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/** The store the configuration picks: the embedded one under the data dir, or NATS JetStream. */
export async function storeOptions(config: ServerConfig, dataDir: string): Promise<StoreOptions> {
  if (config.store === 'sqlite' || config.nats === undefined) return { kind: 'sqlite', dir: path.join(dataDir, 'store') };
  return {
    kind: 'nats',
    servers: config.nats,
    replicas: config.natsReplicas,
    prefix: config.natsPrefix,
    spoolDir: path.join(dataDir, 'nats-spool'),
    ...(config.natsBlobCache > 0 ? { blobCache: { dir: path.join(dataDir, 'nats-blob-cache'), maxBytes: config.natsBlobCache } } : {}),
    ...(await natsAuth(config)),
  };
}

/** Runs the start-up steps; if one fails, runs the shutdown steps registered so far, then rethrows. */
async function startedOrStopped<T>(lifecycle: Lifecycle, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    await lifecycle.shutdown('start-up failed');
    throw error;
  }
}

/** True when the file exists. */
async function fileExists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

/** Starts the server; resolves once it listens. */
export async function runServer(config: ServerConfig, io: { stdout: NodeJS.WritableStream; logger?: Logger }): Promise<RunningServer> {
  const logger = io.logger ?? createLogger({ level: config.logLevel, name: 'strata-server' });
  const lifecycle = new Lifecycle(logger, { deadlineMs: 10_000 });
  const dataDir = path.resolve(config.data);
  // The SSH front's key files are checked first, so a bad one stops the server before anything starts.
  if (config.sshListen && (!config.sshOperatorKeys || !config.sshAgentKeys)) throw new StrataError('BAD_REQUEST', '--ssh-listen needs --ssh-operator-keys and --ssh-agent-keys');
  const sshKeys = config.sshListen ? await loadSshKeys({ operatorKeysFile: config.sshOperatorKeys!, agentKeysFile: config.sshAgentKeys! }) : undefined;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const options = await storeOptions(config, dataDir);
  const store = await createStore(options);
  lifecycle.onShutdown(() => store.close());

  // Anything that fails from here on (a port taken, NATS away, a bad host key) stops what already
  // started, so the process exits instead of listening half-started.
  const { tls, url, replica, cluster, ssh, firstStart } = await startedOrStopped(lifecycle, async () => {
    const tls = config.insecureHttp ? undefined : await ensureServerTls(dataDir, [config.listen.host, ...config.tlsSan].filter((h) => h !== '0.0.0.0' && h !== '::'), store);
    // The bus uses the store's NATS servers and credentials; shut down after the app (its hub closes it).
    const cluster = await createClusterBus(options.kind === 'nats' ? { nats: options } : {}, logger);
    lifecycle.onShutdown(() => cluster.close()); // after the app (cleanups run in reverse); a second close does nothing
    const replica = cluster.replica;
    const limits = { maxUploadBytes: config.maxUpload, maxJsonBytes: config.maxJson, archive: { maxEntries: config.maxArchiveEntries, maxUnpackedBytes: config.maxUnpacked } };
    const app = await buildApp({
      store, logger, version: STRATA_VERSION, metricsPublic: config.metricsPublic, limits, cluster,
      ...(tls ? { caFingerprint: tls.fingerprint, https: { key: tls.key, cert: tls.cert } } : {}),
    });
    lifecycle.onShutdown(() => app.close());
    await app.listen({ host: config.listen.host, port: config.listen.port, backlog: 4096 });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.listen.port;
    const url = clientUrl(tls ? 'https' : 'http', config.listen.host, port);

    let ssh: SshFront | undefined;
    if (config.sshListen && sshKeys) {
      ssh = await startSshFront({
        host: config.sshListen.host, port: config.sshListen.port,
        operatorKeysFile: config.sshOperatorKeys!, agentKeysFile: config.sshAgentKeys!,
        handshakeTimeoutMs: config.sshHandshakeTimeout, deadlineMs: config.sshDeadline, maxConnections: config.sshMaxSessions,
      }, sshKeys, { registry: new Registry(store), limits, logger, dataDir });
      lifecycle.onShutdown(() => ssh!.close());
    }

    const { firstStart } = await bootstrap(store, { dataDir, serverUrl: url, ...(tls ? { caFingerprint: tls.fingerprint } : {}) });
    const retention = setInterval(() => {
      applyRetention(store, { maxVersions: config.maxVersions, graceMs: config.uploadGrace })
        .then((report) => logger.info({ report }, 'retention ran'))
        .catch((error: unknown) => logger.error({ err: error }, 'retention failed'));
    }, config.retentionInterval);
    retention.unref();
    lifecycle.onShutdown(async () => clearInterval(retention));
    return { tls, url, replica, cluster, ssh, firstStart };
  });
  lifecycle.transition('running');
  logger.info({ url, store: store.kind, dataDir, caFingerprint: tls?.fingerprint, replica, cluster: cluster.kind }, 'server listening');

  const files = bootstrapFiles(dataDir);
  // A replica joining a store another replica bootstrapped has no first-start files of its own.
  const joined = !firstStart && !(await fileExists(files.adminEnv));
  const lines = [
    `Strata server listening on ${url} (store: ${store.kind}, data: ${dataDir}, replica: ${replica})`,
    ...(tls ? [`CA fingerprint: ${tls.fingerprint}`] : ['WARNING: plain HTTP (--insecure-http): tokens cross the network in clear text']),
    ...(joined
      ? ['This replica joined a store another replica set up: its admin.env and join-token are on that replica.',
        'Create tokens against any replica: strata token create --role admin --name ops; strata join-token create']
      : [firstStart ? `First start: admin credentials written to ${files.adminEnv}` : `Admin credentials: ${files.adminEnv}`,
        ...(tls ? [`Join token for agents: ${files.joinToken}`] : [])]),
    ...(ssh ? [`SSH front (deploy-tools) listening on ${ssh.host.includes(':') ? `[${ssh.host}]` : ssh.host}:${ssh.port}`, `host key fingerprint: ${ssh.fingerprint}`] : []),
    '',
    'Next, in another terminal (from the Strata checkout):',
    `  source ${files.adminEnv}`,
    '  export PATH="$PWD/bin:$PATH"',
    '  strata push ./some-directory --name web --version v1',
    '  strata addconf --name site --layer web:v1',
    '  strata showconf --name site',
    '',
  ];
  io.stdout.write(lines.join('\n'));
  return { url, lifecycle, ...(tls ? { caFingerprint: tls.fingerprint } : {}) };
}
