/**
 * Real nats-server processes for tests: a single JetStream server, or a three-node JetStream
 * cluster, on free loopback ports with their store dirs in a temp dir. A node can be killed with
 * SIGKILL and restarted on the same ports and store dir. Everything is stopped and removed by
 * `stop()`, and any server still running is killed when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Every server process any helper started, killed on exit whatever happens. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** The nats-server binary: $STRATA_NATS_SERVER, else the first on PATH or in /usr/sbin, /usr/bin. */
export async function natsServerBinary(): Promise<string | undefined> {
  if (process.env['STRATA_NATS_SERVER']) return process.env['STRATA_NATS_SERVER'];
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/sbin', '/usr/bin', '/usr/local/bin'];
  for (const dir of dirs) {
    const candidate = path.join(dir, 'nats-server');
    if (await access(candidate).then(() => true, () => false)) return candidate;
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 (the OS picks it; it is released for the server to take). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** One nats-server process of a test deployment. */
export interface NatsNode {
  name: string;
  /** Client URL, e.g. nats://127.0.0.1:40001. */
  url: string;
  storeDir: string;
  readonly process: ChildProcess | undefined;
}

/** A running single server or cluster. */
export interface NatsDeployment {
  nodes: NatsNode[];
  /** Every node's client URL. */
  servers: string[];
  /** Kills a node with SIGKILL (no shutdown, as a crash) and waits for it to exit. */
  kill(node: NatsNode): Promise<void>;
  /** Starts a killed node again with the same ports and store dir, and waits until it is ready. */
  restart(node: NatsNode): Promise<void>;
  /** Stops every node and removes their store dirs. */
  stop(): Promise<void>;
}

interface NodeSpec {
  name: string;
  port: number;
  monitorPort: number;
  clusterPort?: number;
  storeDir: string;
  log: string[];
  child?: ChildProcess;
}

/** Starts a single JetStream server. */
export function startNatsServer(): Promise<NatsDeployment> {
  return startDeployment(1);
}

/** Starts a three-node JetStream cluster (routes between all nodes), ready once every node is healthy. */
export function startNatsCluster(): Promise<NatsDeployment> {
  return startDeployment(3);
}

async function startDeployment(size: number): Promise<NatsDeployment> {
  const binary = await natsServerBinary();
  if (binary === undefined) throw new Error('nats-server not found: install it (apt-get install nats-server) or set STRATA_NATS_SERVER');
  const root = await mkdtemp(path.join(os.tmpdir(), 'strata-nats-'));
  const specs: NodeSpec[] = [];
  for (let i = 1; i <= size; i += 1) {
    specs.push({
      name: `n${i}`,
      port: await freePort(),
      monitorPort: await freePort(),
      ...(size > 1 ? { clusterPort: await freePort() } : {}),
      storeDir: path.join(root, `n${i}`),
      log: [],
    });
  }
  const routes = specs.map((s) => `nats://127.0.0.1:${s.clusterPort}`).join(',');
  const argsOf = (spec: NodeSpec): string[] => [
    '-js', '-sd', spec.storeDir, '-a', '127.0.0.1', '-p', String(spec.port), '-m', String(spec.monitorPort),
    '--server_name', spec.name,
    ...(spec.clusterPort === undefined ? [] : ['--cluster_name', 'strata-test', '--cluster', `nats://127.0.0.1:${spec.clusterPort}`, '--routes', routes]),
  ];
  const launch = (spec: NodeSpec): void => {
    const child = spawn(binary, argsOf(spec), { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    child.once('exit', () => running.delete(child));
    const keep = (data: Buffer): void => {
      spec.log.push(data.toString());
      if (spec.log.length > 200) spec.log.splice(0, spec.log.length - 200);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    spec.child = child;
  };
  const ready = async (spec: NodeSpec): Promise<void> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (spec.child?.exitCode !== null && spec.child?.exitCode !== undefined) throw new Error(`nats-server ${spec.name} exited:\n${spec.log.join('')}`);
      const healthy = await fetch(`http://127.0.0.1:${spec.monitorPort}/healthz`).then((r) => r.ok, () => false);
      if (healthy) return;
      if (Date.now() > deadline) throw new Error(`nats-server ${spec.name} not ready after 30s:\n${spec.log.join('')}`);
      await sleep(50);
    }
  };
  const exited = (spec: NodeSpec): Promise<void> => new Promise((resolve) => {
    const child = spec.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
  const nodes: NatsNode[] = specs.map((spec) => ({
    name: spec.name,
    url: `nats://127.0.0.1:${spec.port}`,
    storeDir: spec.storeDir,
    get process() { return spec.child; },
  }));
  const specOf = (node: NatsNode): NodeSpec => specs.find((s) => s.name === node.name)!;
  const stop = async (): Promise<void> => {
    for (const spec of specs) spec.child?.kill('SIGTERM');
    await Promise.race([Promise.all(specs.map(exited)), sleep(5000)]);
    for (const spec of specs) spec.child?.kill('SIGKILL');
    await Promise.all(specs.map(exited));
    await rm(root, { recursive: true, force: true });
  };
  try {
    for (const spec of specs) launch(spec);
    await Promise.all(specs.map(ready));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    nodes,
    servers: nodes.map((n) => n.url),
    async kill(node) {
      const spec = specOf(node);
      spec.child?.kill('SIGKILL');
      await exited(spec);
    },
    async restart(node) {
      const spec = specOf(node);
      launch(spec);
      await ready(spec);
    },
    stop,
  };
}
