/**
 * Server replicas in the test process: apps built on one shared store, each with its own NATS
 * cluster bus and a real listening socket, plus the calls the cluster tests make through them
 * (orders as NDJSON, who is online).
 */
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/server/build-app.ts';
import { createLogger } from '../../src/lib/logger.ts';
import { createHttpClient } from '../../src/lib/http-client.ts';
import { connectNats } from '../../src/store/nats/connection.ts';
import { NatsBus, type BusTiming } from '../../src/server/cluster/nats-bus.ts';
import type { Store } from '../../src/store/contract.ts';
import type { OrderEvent } from '../../src/protocol/order-api.ts';
import type { HostResult } from '../../src/protocol/orders.ts';
import { roleTokens, TEST_CA, type TestApp } from './app.ts';

/** Short bus timing for tests: a beat every 100 ms, dead after 800 ms. */
export const TEST_BUS_TIMING: BusTiming = { beatMs: 100, expireMs: 800, requestTimeoutMs: 2000 };

/** A replica: an app with its own NATS bus on the shared store, listening on a free port. */
export interface Replica {
  app: FastifyInstance;
  bus: NatsBus;
  /** `127.0.0.1:port` */
  base: string;
  client: ReturnType<typeof createHttpClient>;
  /** The app view with tokens of every role, for the fake-agent helpers. */
  env: TestApp;
  close(): Promise<void>;
}

/** Starts a replica on `store`, its bus connected to `servers` with subject `prefix`. */
export async function startReplica(store: Store, servers: string[], prefix: string, timing: BusTiming = TEST_BUS_TIMING): Promise<Replica> {
  const bus = new NatsBus(await connectNats({ servers, replicas: 1 }), { log: createLogger({ level: 'silent' }), prefix, timing });
  const app = await buildApp({
    store, logger: createLogger({ level: 'silent' }), version: 'test', caFingerprint: TEST_CA, cluster: bus,
    channel: { pingIntervalMs: 60_000, silenceTimeoutMs: 120_000 },
    limits: { maxUploadBytes: 1024 * 1024, maxJsonBytes: 1024 * 1024, archive: { maxEntries: 100, maxUnpackedBytes: 1024 * 1024 } },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const client = createHttpClient({ baseUrl: `http://${base}` });
  const { auth, tokenIds } = await roleTokens(store);
  let closed = false;
  return {
    app, bus, base, client, env: { app, store, auth, tokenIds },
    async close() {
      if (closed) return;
      closed = true;
      client.close();
      await app.close();
    },
  };
}

/** Sends an order through a replica and collects its NDJSON events with their arrival time. */
export async function sendOrder(r: Replica, body: Record<string, unknown>): Promise<(OrderEvent & { at: number })[]> {
  const started = Date.now();
  const response = await r.client.request({ method: 'POST', path: '/v1/orders', headers: r.env.auth.deployer, json: body });
  assert.equal(response.status, 200);
  const events: (OrderEvent & { at: number })[] = [];
  for await (const line of createInterface({ input: response.body })) events.push({ ...(JSON.parse(line) as OrderEvent), at: Date.now() - started });
  return events;
}

/** The result events by host. */
export function resultsByHost(events: OrderEvent[]): Record<string, HostResult> {
  return Object.fromEntries(events.flatMap((e) => (e.type === 'result' ? [[e.host, e.result]] : [])));
}

/** Who is online, as a replica's GET /v1/agents says. */
export async function onlineAgents(r: Replica): Promise<Record<string, boolean>> {
  const response = await r.app.inject({ method: 'GET', url: '/v1/agents', headers: r.env.auth.viewer });
  return Object.fromEntries((response.json() as { agents: { name: string; online: boolean }[] }).agents.map((a) => [a.name, a.online]));
}

/** Cuts a replica's NATS connection without a goodbye, as if the process had died. */
export async function cutNats(r: Replica): Promise<void> {
  await (r.bus as unknown as { nc: { close(): Promise<void> } }).nc.close();
}
