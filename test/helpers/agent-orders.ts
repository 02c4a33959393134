/** Runs orders through the agent's real dispatcher, with a real config file, and collects what it sends. */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { loadAgentConfig, type AgentConfig } from '../../src/agent/agent-config.ts';
import { createAgentLogger } from '../../src/agent/agent-log.ts';
import { OrderDispatcher } from '../../src/agent/orders/dispatcher.ts';
import { SyncRegistry } from '../../src/agent/orders/sync-registry.ts';
import type { HostResult } from '../../src/protocol/orders.ts';

/** What one order produced. */
export interface OrderRun {
  progress: unknown[];
  /** Resolves with the one result; a second result fails the test through `results`. */
  result: Promise<HostResult>;
  /** Every result sent for this order (must end up with exactly one). */
  results: HostResult[];
}

/** A dispatcher over a config file written from `toml`, logging to `dir/agent.log`. */
export interface OrderHarness {
  dir: string;
  config: AgentConfig;
  dispatcher: OrderDispatcher;
  /** Sends an order (raw: it is validated as if it came off the wire); `deadlineMs` from now, default 30 s. */
  send(args: unknown, options?: { id?: string; deadlineMs?: number }): OrderRun;
  /** Sends and waits for the result. */
  run(args: unknown, options?: { id?: string; deadlineMs?: number }): Promise<HostResult & { progress: unknown[] }>;
}

let sequence = 0;

/** Writes `toml` to `dir/agent.toml`, loads it, and builds a dispatcher. */
export async function orderHarness(dir: string, toml: string, options: { maxConcurrent?: number } = {}): Promise<OrderHarness> {
  const file = path.join(dir, 'agent.toml');
  await writeFile(file, toml);
  const config = await loadAgentConfig(file);
  const log = createAgentLogger({ dir, level: 'debug', stderr: new PassThrough().resume() });
  const dispatcher = new OrderDispatcher({
    dir, name: 'test-agent', config, log, syncs: new SyncRegistry(),
    agentEnv: { PATH: process.env['PATH'], HOME: process.env['HOME'], STRATA_JOIN_TOKEN: 'secret-token' },
  }, options);
  const send = (args: unknown, sendOptions: { id?: string; deadlineMs?: number } = {}): OrderRun => {
    const id = sendOptions.id ?? `order-${++sequence}`;
    const progress: unknown[] = [];
    const results: HostResult[] = [];
    let resolve!: (result: HostResult) => void;
    const result = new Promise<HostResult>((r) => (resolve = r));
    const deadline = new Date(Date.now() + (sendOptions.deadlineMs ?? 30_000)).toISOString();
    dispatcher.receive({ id, args, deadline }, {
      progress: (orderId, content) => {
        if (orderId === id) progress.push(content);
      },
      result: (orderId, hostResult) => {
        if (orderId !== id) return;
        results.push(hostResult);
        resolve(hostResult);
      },
    });
    return { progress, result, results };
  };
  return {
    dir, config, dispatcher, send,
    async run(args, runOptions) {
      const sent = send(args, runOptions);
      const result = await sent.result;
      return { ...result, progress: sent.progress };
    },
  };
}

/** True while a process with this pid runs (a zombie waiting to be reaped by init does not). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
