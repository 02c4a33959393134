/**
 * The store backend a benchmark runs its server on: the embedded SQLite store, or NATS JetStream
 * with a nats-server this helper starts (so its pid can be read from /proc: "what NATS costs")
 * and one or more `strata server --store nats` replicas sharing it. Parses `--store`, starts and
 * stops everything, and kills it all synchronously for a Ctrl-C handler.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startNatsServer, type NatsDeployment } from '../../test/helpers/nats-server.ts';
import { startServer, type StoreBackend, type TestServer } from '../../test/helpers/strata-server.ts';
import { onInterrupt } from './interrupt.ts';
import { readProc, running, type ProcSample } from './proc.ts';

/** What `--store` accepts: one backend, or both side by side. */
export type StoreChoice = StoreBackend | 'both';

/** The `--store` option for node:util parseArgs, default `sqlite` (the benchmarks' behaviour before NATS). */
export const STORE_OPTION = { store: { type: 'string', default: 'sqlite' } } as const;

/** Parses `--store sqlite|nats|both` into the backends to run, embedded first. */
export function parseStores(text: string): StoreBackend[] {
  if (text === 'sqlite' || text === 'nats') return [text];
  if (text === 'both') return ['sqlite', 'nats'];
  throw new Error(`--store must be sqlite, nats or both, not ${JSON.stringify(text)}`);
}

/** How reports name a backend. */
export function storeLabel(store: StoreBackend): string {
  return store === 'sqlite' ? 'embedded' : 'nats';
}

/** A running backend: its server replicas (one unless asked for more) and, with NATS, the nats-server. */
export interface Backend {
  store: StoreBackend;
  /** Replica A first; with SQLite there is only one. */
  servers: TestServer[];
  /** The nats-server this helper started (NATS only). */
  nats?: NatsDeployment;
  /** The join token the first server wrote. */
  joinToken: string;
  /** The nats-server's pid, for its RSS and CPU (NATS only). */
  natsPid(): number | undefined;
  /** /proc figures of the nats-server now (NATS only). */
  readNats(): ProcSample | undefined;
  /** Stops every replica, then the nats-server, and removes its store dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL to every process and removal of the nats store dir, synchronously (Ctrl-C). */
  kill(): void;
}

/**
 * Starts a backend with its data directories under `root` (`data-<store>[-<replica>]`). With NATS,
 * replica A bootstraps the store (CA, admin token, join token); the others join it with A's token.
 */
export async function startBackend(root: string, store: StoreBackend, options: { replicas?: number; extraArgs?: string[] } = {}): Promise<Backend> {
  const replicas = options.replicas ?? 1;
  if (store === 'sqlite' && replicas !== 1) throw new Error('the embedded store runs one server; replicas need --store nats');
  const servers: TestServer[] = [];
  let nats: NatsDeployment | undefined;
  let stopping: Promise<void> | undefined;
  const natsPid = (): number | undefined => nats?.nodes[0]?.process?.pid;
  const backend: Backend = {
    store, servers, joinToken: '',
    natsPid,
    readNats: () => {
      const pid = natsPid();
      return pid === undefined ? undefined : readProc(pid);
    },
    stop() {
      stopping ??= (async () => {
        await Promise.all(servers.map((server) => server.stop('SIGTERM').catch(() => undefined)));
        await nats?.stop();
      })();
      return stopping;
    },
    kill() {
      for (const server of servers) server.process.kill('SIGKILL');
      for (const node of nats?.nodes ?? []) node.process?.kill('SIGKILL');
      if (nats) rmSync(path.dirname(nats.nodes[0]!.storeDir), { recursive: true, force: true });
    },
  };
  try {
    if (store === 'sqlite') {
      servers.push(await startServer(path.join(root, 'data-sqlite'), options.extraArgs ?? []));
    } else {
      nats = await startNatsServer();
      backend.nats = nats;
      for (let index = 0; index < replicas; index += 1) {
        const first = servers[0];
        servers.push(await startServer(path.join(root, `data-nats-${index}`), options.extraArgs ?? [], { store: 'nats', nats: nats.servers[0]!, ...(first ? { token: first.token } : {}) }));
      }
    }
    backend.joinToken = readFileSync(path.join(servers[0]!.dataDir, 'join-token'), 'utf8').trim();
  } catch (error) {
    await backend.stop();
    throw error;
  }
  return backend;
}

/** "1.23×" for nats / embedded, or "n/a" when either side is missing. */
export function ratio(nats: number | undefined, embedded: number | undefined): string {
  if (nats === undefined || embedded === undefined || !Number.isFinite(nats) || !Number.isFinite(embedded) || embedded === 0) return 'n/a';
  return `${(nats / embedded).toFixed(2)}×`;
}

/** A benchmark's temp dir and the backends it starts there. */
export interface BenchWorkspace {
  root: string;
  /** Push every backend started, so that both ends below stop it. */
  backends: Backend[];
  /** Stops the backends and removes the temp dir (the end of a run, failed or not). */
  close(): Promise<void>;
}

/** Makes the temp dir and registers the Ctrl-C handler that kills every child and backend and removes it. */
export function benchWorkspace(prefix: string): BenchWorkspace {
  const root = mkdtempSync(path.join(os.tmpdir(), prefix));
  const backends: Backend[] = [];
  onInterrupt(`removed ${root}`, () => {
    for (const child of running) child.kill('SIGKILL');
    for (const backend of backends) backend.kill();
    rmSync(root, { recursive: true, force: true });
  });
  return {
    root,
    backends,
    async close() {
      for (const backend of backends) await backend.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
