/**
 * The NATS JetStream Store: every replica of the server shares one NATS account (a single
 * server for trials, a three-node cluster with R3 for production).
 *
 * Design note — layout (`<p>` is the prefix, default `strata`):
 * - `<p>-ledger` stream, subjects `<p>.ledger.{blob,ver,comp,cfg}.…`: blob records, component
 *   versions, component tombstones and configuration revisions (names base64url-encoded as
 *   subject tokens). Blob bytes live in the `<p>-blobs` object store, one object per upload.
 * - KV buckets `<p>-tokens`, `-agents`, `-assignments`, `-groups`, `-state` (history 1, reads
 *   from the stream leader), `-claims` (the same, entries expiring after CLAIM_MAX_TTL_MS);
 *   streams `<p>-audit`, `<p>-orders`, `<p>-order-results`.
 *
 * The hard parts, and how they are solved:
 * 1. `seq` and `watchConfigurations`. A configuration's `seq` is the ledger stream sequence of
 *    the message that wrote it: strictly increasing store-wide, assigned by JetStream, durable.
 *    Each configuration is one subject holding its revisions since its last deletion (a deletion
 *    is a tombstone published with a subject rollup, so history and deletion go in one atomic
 *    message that takes a seq of its own). The watch is one consumer with DeliverLastPerSubject
 *    on `cfg.>`: the newest message per configuration (the compacted replay), then everything
 *    appended later, from one server-side cursor: no gap, no duplicate at the seam; resuming
 *    after a lost consumer is a new compacted replay after the last delivered seq
 *    (configuration-watch.ts).
 * 2. deleteVersion/deleteComponent vs putConfiguration (and addVersion vs deleteBlob/sweep).
 *    NATS 2.9 has compare-and-set on one subject only and no atomic batches, so a per-record
 *    CAS cannot make "no configuration uses this version" and "every layer's version exists"
 *    hold at commit (write skew). Instead the records these invariants span share one stream
 *    and every such operation is an optimistic transaction on the whole stream: read its last
 *    sequence S, read and check, publish with `Nats-Expected-Last-Sequence: S` and start over
 *    if anything was appended meanwhile (ledger.ts). That is serializable; the price is that
 *    ledger writes serialize, which operator-paced writes (pushes, configuration changes,
 *    retention) afford easily. Deleting a component is one tombstone on `comp.<c>` that
 *    deletes every older version at once, so it is all or nothing even across a crash.
 * 3. Orders are kept newest-N by pruning right after each creation (orders.ts; idempotent, at
 *    most a few extra after a crash). The audit `seq` is the audit stream's sequence.
 * 4. Blobs. An upload streams into a fresh object (and a local spool file that `beforeCommit`
 *    re-reads at random) and becomes visible only when its ledger record is written, naming the
 *    object; re-uploading stored bytes refreshes `uploadedAt` with CAS on the record's subject.
 *    Sweep deletes unreferenced records older than the grace period in a chained ledger
 *    transaction (a concurrent addVersion or re-upload aborts it), then their objects; objects
 *    are per upload, so removing one never takes bytes a newer upload of the same blob needs.
 *    It also removes abandoned uploads: objects no record names, chunks without metadata and
 *    spool files, each older than the grace period (blob-upload.ts, blob-gc.ts).
 * 5. close() aborts every watch and long read, then closes the connection (flushing acks of
 *    writes already made); it is idempotent.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setSha256Backend } from '@nats-io/obj';
import type { Store } from '../contract.ts';
import { getAgent, listAgents, putAgent } from './agents.ts';
import { deleteAssignment, listAssignments, putAssignment } from './assignments.ts';
import { appendAudit, listAudit } from './audit-log.ts';
import { deleteBlob, sweep } from './blob-gc.ts';
import { getBlob, verifyBlob } from './blob-read.ts';
import { statBlob } from './blob-records.ts';
import { putBlob } from './blob-upload.ts';
import { storageError } from './codec.ts';
import { watchConfigurations } from './configuration-watch.ts';
import { configurationHistory, deleteConfiguration, getConfiguration, listConfigurations, putConfiguration } from './configurations.ts';
import { connectNats, ensureLayout, natsLayout, type NatsStoreOptions } from './connection.ts';
import type { NatsContext } from './context.ts';
import { deleteGroup, getGroup, listGroups, putGroup } from './groups.ts';
import { createOrder, finishOrder, getOrder, listOrders } from './orders.ts';
import { claimOnce, getState, listState, putStateIfAbsent } from './server-state.ts';
import { importRecord } from './import.ts';
import { createToken, getToken, listTokens, revokeToken } from './tokens.ts';
import { addVersion, deleteComponent, deleteVersion, getVersion, listComponents, listVersions } from './versions.ts';
import { LocalBlobCache } from './blob-cache.ts';
import { StoreGate } from '../store-gate.ts';

export type { NatsStoreOptions } from './connection.ts';

/** Bytes per object-store chunk: one JetStream message each, well under the default 1 MiB max_payload. */
const CHUNK_SIZE = 512 * 1024;

/** Connects, creates what is missing (streams, buckets, object store) and returns the store. */
export async function openNatsStore(options: NatsStoreOptions): Promise<Store> {
  // The object store hashes every chunk it writes and reads; Node's native SHA-256 is several
  // times faster than the default pure-JS one (process-wide, which suits a server).
  setSha256Backend('native');
  const layout = natsLayout(options.prefix);
  const nc = await connectNats(options);
  let handles;
  try {
    handles = await ensureLayout(nc, layout, options.replicas, options.requestTimeoutMs);
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw error;
  }
  const closing = new AbortController();
  const ctx: NatsContext = {
    ...handles,
    nc,
    layout,
    spoolDir: options.spoolDir ?? join(tmpdir(), 'strata-nats-spool'),
    chunkSize: Math.min(CHUNK_SIZE, nc.info?.max_payload ?? CHUNK_SIZE),
    verified: new Map(),
    ...(options.blobCache ? { blobCache: new LocalBlobCache(options.blobCache.dir, options.blobCache.maxBytes) } : {}),
    closing: closing.signal,
  };
  // Every operation refuses after close and names NATS's failures (full JetStream, NATS briefly away).
  const gate = new StoreGate(ctx, storageError);
  const { run } = gate;

  return {
    kind: 'nats',
    putBlob: (source, putOptions) => run((c) => putBlob(c, source, putOptions)),
    getBlob: (sha256, range) => run((c) => getBlob(c, sha256, range)),
    statBlob: (sha256) => run((c) => statBlob(c, sha256)),
    verifyBlob: (sha256) => run((c) => verifyBlob(c, sha256)),
    deleteBlob: (sha256) => run((c) => deleteBlob(c, sha256)),
    sweep: (sweepOptions) => run((c) => sweep(c, sweepOptions)),
    addVersion: (input) => run((c) => addVersion(c, input)),
    getVersion: (component, version) => run((c) => getVersion(c, component, version)),
    listVersions: (component) => run((c) => listVersions(c, component)),
    listComponents: () => run((c) => listComponents(c)),
    deleteVersion: (component, version) => run((c) => deleteVersion(c, component, version)),
    deleteComponent: (component) => run((c) => deleteComponent(c, component)),
    getConfiguration: (name) => run((c) => getConfiguration(c, name)),
    listConfigurations: () => run((c) => listConfigurations(c)),
    putConfiguration: (input) => run((c) => putConfiguration(c, input)),
    deleteConfiguration: (name, deleteOptions) => run((c) => deleteConfiguration(c, name, deleteOptions)),
    configurationHistory: (name) => run((c) => configurationHistory(c, name)),
    watchConfigurations(watchOptions) {
      gate.assertOpen();
      return watchConfigurations(ctx, watchOptions);
    },
    createToken: (record) => run((c) => createToken(c, record)),
    getToken: (id) => run((c) => getToken(c, id)),
    listTokens: () => run((c) => listTokens(c)),
    revokeToken: (id, at) => run((c) => revokeToken(c, id, at)),
    getAgent: (name) => run((c) => getAgent(c, name)),
    listAgents: () => run((c) => listAgents(c)),
    putAgent: (record, expectedRevision) => run((c) => putAgent(c, record, expectedRevision)),
    putAssignment: (input) => run((c) => putAssignment(c, input)),
    deleteAssignment: (configuration, selector) => run((c) => deleteAssignment(c, configuration, selector)),
    listAssignments: () => run((c) => listAssignments(c)),
    putGroup: (input) => run((c) => putGroup(c, input)),
    getGroup: (name) => run((c) => getGroup(c, name)),
    listGroups: () => run((c) => listGroups(c)),
    deleteGroup: (name) => run((c) => deleteGroup(c, name)),
    createOrder: (input, orderOptions) => run((c) => createOrder(c, input, orderOptions)),
    finishOrder: (id, outcome) => run((c) => finishOrder(c, id, outcome)),
    getOrder: (id) => run((c) => getOrder(c, id)),
    listOrders: (listOptions) => run((c) => listOrders(c, listOptions)),
    appendAudit: (entry) => run((c) => appendAudit(c, entry)),
    listAudit: (auditOptions) => run((c) => listAudit(c, auditOptions)),
    getState: (key) => run((c) => getState(c, key)),
    putStateIfAbsent: (key, value) => run((c) => putStateIfAbsent(c, key, value)),
    claimOnce: (key, ttlMs) => run((c) => claimOnce(c, key, ttlMs)),
    listState: () => run((c) => listState(c)),
    importRecord: (record) => run((c) => importRecord(c, record)),
    async close() {
      if (gate.closed) return;
      gate.closed = true;
      closing.abort();
      await nc.close().catch(() => undefined);
    },
  };
}
