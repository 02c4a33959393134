/**
 * Connecting to NATS and laying out what the store keeps there: the names of its streams,
 * buckets and subjects (all derived from one prefix), created idempotently at open with the
 * configured replica count.
 */
import { readFile } from 'node:fs/promises';
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { CLAIM_MAX_TTL_MS } from '../contract.ts';

/** How to reach NATS and what to call things there. */
export interface NatsStoreOptions {
  /** Server URLs, e.g. `nats://10.0.0.1:4222`; several for a cluster. */
  servers: string[];
  /** A `.creds` file (JWT + nkey seed), as `nats` and `nsc` write them. */
  creds?: string;
  user?: string;
  password?: string;
  /** TLS: a CA to trust, and a client certificate and key for mutual TLS (file paths). */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Replicas of every stream and bucket: 1 for a single server, 3 for a cluster. */
  replicas: number;
  /** Prefix of every stream, bucket and subject name (default `strata`); one NATS account can hold several stores. */
  prefix?: string;
  /** Where uploads are staged locally while they stream in, for `beforeCommit` to re-read (default: the OS temp dir). */
  spoolDir?: string;
  /**
   * Where this replica keeps local copies of blobs it serves (`blob-cache.ts`), and how many bytes
   * at most; without a directory, every download streams from the object store.
   */
  blobCache?: { dir: string; maxBytes: number };
  /** How long one JetStream request may take before it fails (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Connection name shown by the NATS server's monitoring. */
  name?: string;
}

/** The names of everything the store keeps in NATS. */
export interface NatsLayout {
  prefix: string;
  /** Blob records, component versions, component tombstones and configuration revisions: the stream whose sequence is the configuration `seq`. */
  ledger: { stream: string; subjects: string };
  audit: { stream: string; subject: string };
  orders: { stream: string; subjects: string };
  orderResults: { stream: string; subjects: string };
  buckets: { tokens: string; agents: string; assignments: string; groups: string; state: string; claims: string };
  objects: string;
}

/** The layout for a prefix. */
export function natsLayout(prefix = 'strata'): NatsLayout {
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) throw new Error(`invalid NATS name prefix ${JSON.stringify(prefix)}: use letters, digits, "-" and "_"`);
  return {
    prefix,
    ledger: { stream: `${prefix}-ledger`, subjects: `${prefix}.ledger.>` },
    audit: { stream: `${prefix}-audit`, subject: `${prefix}.audit` },
    orders: { stream: `${prefix}-orders`, subjects: `${prefix}.orders.>` },
    orderResults: { stream: `${prefix}-order-results`, subjects: `${prefix}.order-results.>` },
    buckets: {
      tokens: `${prefix}-tokens`,
      agents: `${prefix}-agents`,
      assignments: `${prefix}-assignments`,
      groups: `${prefix}-groups`,
      state: `${prefix}-state`,
      claims: `${prefix}-claims`,
    },
    objects: `${prefix}-blobs`,
  };
}

/** Every stream name of a layout (KV buckets and the object store are streams too). */
export function layoutStreams(layout: NatsLayout): string[] {
  return [
    layout.ledger.stream, layout.audit.stream, layout.orders.stream, layout.orderResults.stream,
    ...Object.values(layout.buckets).map((bucket) => `KV_${bucket}`),
    `OBJ_${layout.objects}`,
  ];
}

/** Connects with the configured credentials and TLS; reconnects forever, across the cluster. */
export async function connectNats(options: NatsStoreOptions): Promise<NatsConnection> {
  const tls = options.tls;
  return connect({
    servers: options.servers,
    name: options.name ?? 'strata-server',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    ...(options.creds === undefined ? {} : { authenticator: credsAuthenticator(new Uint8Array(await readFile(options.creds))) }),
    ...(options.user === undefined ? {} : { user: options.user, pass: options.password ?? '' }),
    ...(tls === undefined ? {} : { tls: { ...(tls.ca ? { caFile: tls.ca } : {}), ...(tls.cert ? { certFile: tls.cert } : {}), ...(tls.key ? { keyFile: tls.key } : {}) } }),
  });
}

/** The opened handles of a layout. */
export interface NatsHandles {
  js: JetStreamClient;
  jsm: JetStreamManager;
  kv: { tokens: KV; agents: KV; assignments: KV; groups: KV; state: KV; claims: KV };
  objects: ObjectStore;
}

/** Creates (if missing) every stream and bucket with `replicas` and opens them. Safe to run on every start, by every replica. */
export async function ensureLayout(nc: NatsConnection, layout: NatsLayout, replicas: number, timeout = 5000): Promise<NatsHandles> {
  const jsm = await jetstreamManager(nc, { timeout });
  const js = jetstream(nc, { timeout });
  const limits = { num_replicas: replicas, allow_rollup_hdrs: true, max_msgs_per_subject: -1 } as const;
  await ensureStream(jsm, { name: layout.ledger.stream, subjects: [layout.ledger.subjects], ...limits, description: 'Strata: blobs, versions and configuration revisions (seq = stream sequence)' });
  await ensureStream(jsm, { name: layout.audit.stream, subjects: [layout.audit.subject], ...limits, description: 'Strata: audit log (seq = stream sequence)' });
  await ensureStream(jsm, { name: layout.orders.stream, subjects: [layout.orders.subjects], ...limits, description: 'Strata: fleet orders in creation order' });
  await ensureStream(jsm, { name: layout.orderResults.stream, subjects: [layout.orderResults.subjects], ...limits, description: 'Strata: outcomes of finished orders' });
  const kvm = new Kvm(js);
  const bucket = async (name: string, ttl?: number): Promise<KV> => {
    // allow_direct off: every read goes to the stream leader, so a write is visible to the next read (R3 too).
    const kv = await kvm.create(name, { history: 1, replicas, allow_direct: false, ...(ttl === undefined ? {} : { ttl }) });
    await ensureReplicas(jsm, `KV_${name}`, replicas);
    return kv;
  };
  const kv = {
    tokens: await bucket(layout.buckets.tokens),
    agents: await bucket(layout.buckets.agents),
    assignments: await bucket(layout.buckets.assignments),
    groups: await bucket(layout.buckets.groups),
    state: await bucket(layout.buckets.state),
    // Every entry expires on its own: a claim is worth keeping only while its signature could be accepted.
    claims: await bucket(layout.buckets.claims, CLAIM_MAX_TTL_MS),
  };
  const objects = await new Objm(js).create(layout.objects, { replicas });
  await ensureReplicas(jsm, `OBJ_${layout.objects}`, replicas);
  return { js, jsm, kv, objects };
}

/** Adds a stream, or brings an existing one to this configuration's subjects and replicas. */
async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  const existing = await jsm.streams.info(config.name).catch((error: unknown) => {
    if (/stream not found/i.test(String((error as Error).message))) return undefined;
    throw error;
  });
  if (existing === undefined) {
    await jsm.streams.add(config);
    return;
  }
  const current = existing.config;
  if (current.num_replicas !== config.num_replicas || current.allow_rollup_hdrs !== true || JSON.stringify(current.subjects) !== JSON.stringify(config.subjects)) {
    await jsm.streams.update(config.name, { ...current, subjects: config.subjects ?? current.subjects, num_replicas: config.num_replicas ?? current.num_replicas, allow_rollup_hdrs: true });
  }
}

/** Changes a stream's replica count when it differs (a bucket created before with another count). */
async function ensureReplicas(jsm: JetStreamManager, stream: string, replicas: number): Promise<void> {
  const info = await jsm.streams.info(stream);
  if (info.config.num_replicas !== replicas) await jsm.streams.update(stream, { ...info.config, num_replicas: replicas });
}
