/**
 * Runs the Store conformance suite against the NATS JetStream backend on one real nats-server,
 * once streaming every blob from the object store and once with the replica-local blob cache the
 * server uses; each test gets fresh stream and bucket names (a new prefix) and a fresh spool dir.
 */
import { after, before } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, jetstream } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { runStoreConformance, type StoreHarness } from '../src/store/conformance.ts';
import { openNatsStore } from '../src/store/nats/nats-store.ts';
import { layoutStreams, natsLayout } from '../src/store/nats/connection.ts';
import { startNatsServer, type NatsDeployment } from './helpers/nats-server.ts';

let nats: NatsDeployment;
let admin: NatsConnection;
let counter = 0;

before(async () => {
  nats = await startNatsServer();
  admin = await connect({ servers: nats.servers });
});
after(async () => {
  await admin?.close();
  await nats?.stop();
});

/** A fresh store for one conformance test; `cache`: with a replica-local blob cache, as the server runs it. */
const freshStore = (cache: boolean) => async (): Promise<StoreHarness> => {
  const prefix = `t${process.pid}-${++counter}`;
  const layout = natsLayout(prefix);
  const spoolDir = await mkdtemp(path.join(os.tmpdir(), 'strata-nats-spool-'));
  const blobCache = cache ? { dir: path.join(spoolDir, 'blob-cache'), maxBytes: 64 * 1024 * 1024 } : undefined;
  const open = () => openNatsStore({ servers: nats.servers, replicas: 1, prefix, spoolDir, ...(blobCache ? { blobCache } : {}) });
  let store = await open();
  const jsm = await jetstreamManager(admin);
  const js = jetstream(admin);
  const objectStream = `OBJ_${layout.objects}`;
  /** The object-store object a blob's ledger record names. */
  const objectOf = async (sha256: string): Promise<string> => {
    const record = await jsm.streams.getMessage(layout.ledger.stream, { last_by_subj: `${prefix}.ledger.blob.${sha256}` });
    return (record!.json<{ object: string }>()).object;
  };
  const metaSubject = (name: string) => `$O.${layout.objects}.M.${Buffer.from(name, 'latin1').toString('base64').replace(/\+/g, '-').replace(/\//g, '_')}`;
  return {
    store,
    async corruptBlob(sha256) {
      // Rewrite the object's chunk messages with one byte flipped: same size, metadata untouched,
      // as rot in the stored messages would leave it.
      const os = await new Objm(admin).open(layout.objects);
      const info = (await os.info(await objectOf(sha256)))!;
      const chunkSubject = `$O.${layout.objects}.C.${info.nuid}`;
      const chunks: Uint8Array[] = [];
      const consumer = await jsm.consumers.add(objectStream, { filter_subject: chunkSubject, ack_policy: 'none' as never, mem_storage: true });
      const fetched = await (await js.consumers.get(objectStream, consumer.name)).fetch({ max_messages: consumer.num_pending, expires: 5000 });
      for await (const m of fetched) {
        chunks.push(new Uint8Array(m.data));
        if (chunks.length === consumer.num_pending) break;
      }
      await jsm.consumers.delete(objectStream, consumer.name);
      const middle = chunks[Math.floor(chunks.length / 2)]!;
      middle[Math.floor(middle.length / 2)]! ^= 0xff;
      await jsm.streams.purge(objectStream, { filter: chunkSubject });
      for (const chunk of chunks) await js.publish(chunkSubject, chunk);
    },
    async reopen() {
      await store.close();
      store = await open();
      return store;
    },
    async plantAbandonedUpload(ageMs) {
      // A complete object no blob record names, finished `ageMs` ago (its metadata's mtime backdated).
      const os = await new Objm(admin).open(layout.objects);
      const name = 'ab'.repeat(16);
      await os.putBlob({ name }, new TextEncoder().encode('half an upload'));
      const meta = (await jsm.streams.getMessage(objectStream, { last_by_subj: metaSubject(name) }))!.json<Record<string, unknown>>();
      const h = headers();
      h.set('Nats-Rollup', 'sub');
      await js.publish(metaSubject(name), JSON.stringify({ ...meta, mtime: new Date(Date.now() - ageMs).toISOString() }), { headers: h });
    },
    async cleanup() {
      await store.close();
      for (const stream of layoutStreams(layout)) await jsm.streams.delete(stream).catch(() => undefined);
      await rm(spoolDir, { recursive: true, force: true });
    },
  };
};

runStoreConformance('nats', freshStore(false));
runStoreConformance('nats, with a local blob cache', freshStore(true));
