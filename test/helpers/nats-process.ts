/**
 * Starts real `nats-server` processes for the cluster tests: one node, or a cluster of several
 * routed to each other, each with JetStream in its own temp directory on free loopback ports.
 * A node can be killed (-9) and started again on the same ports and store directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect as tcpConnect } from 'node:net';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

/** One nats-server node. */
export interface NatsNode {
  url: string;
  port: number;
  clusterPort: number;
  process: ChildProcess | undefined;
  logs(): string;
  /** Stops the node with `signal` (SIGKILL for a crash) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the node again on the same ports and store directory. */
  start(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

/** Resolves once something accepts TCP connections on the port, or throws after `timeoutMs`. */
async function waitForPort(port: number, child: ChildProcess, timeoutMs: number, logs: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}: ${logs()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nats-server did not listen on ${port} within ${timeoutMs} ms: ${logs()}`);
}

/** Starts `size` nats-server nodes (routed into one cluster when more than one) under `dir`. */
export async function startNats(dir: string, size = 1): Promise<NatsNode[]> {
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ port: await freePort(), clusterPort: await freePort() })));
  const nodes = ports.map(({ port, clusterPort }, index): NatsNode => {
    let output = '';
    let child: ChildProcess | undefined;
    const storeDir = path.join(dir, `nats-${index}`);
    const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, '-n', `n${index}`];
    if (size > 1) {
      const routes = ports.filter((_, other) => other !== index).map((p) => `nats-route://127.0.0.1:${p.clusterPort}`).join(',');
      args.push('--cluster_name', 'strata-test', '--cluster', `nats://127.0.0.1:${clusterPort}`, '--routes', routes);
    }
    const node: NatsNode = {
      url: `nats://127.0.0.1:${port}`, port, clusterPort,
      get process() {
        return child;
      },
      logs: () => output,
      async start() {
        await mkdir(storeDir, { recursive: true });
        child = spawn('nats-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        await waitForPort(port, child, 15_000, () => output);
      },
      async stop(signal = 'SIGTERM') {
        const running = child;
        if (!running || running.exitCode !== null || running.signalCode !== null) return;
        running.kill(signal);
        await once(running, 'exit');
      },
    };
    return node;
  });
  await Promise.all(nodes.map((node) => node.start()));
  return nodes;
}
