/**
 * The embedded Store: metadata in SQLite (`<dir>/strata.db`, via node:sqlite) and blobs as
 * content-addressed files under `<dir>/blobs`. One process owns a store directory; watches see
 * the writes of that process.
 */
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from '../contract.ts';
import { blobDirs, storageError } from './blob-files.ts';
import { deleteBlob, sweep } from './blob-gc.ts';
import { getBlob, verifyBlob } from './blob-read.ts';
import { findBlobRow } from './blob-rows.ts';
import { putBlob } from './blob-upload.ts';
import { getAgent, listAgents, putAgent } from './agents.ts';
import { appendAudit, listAudit } from './audit-log.ts';
import { deleteAssignment, listAssignments, putAssignment } from './assignments.ts';
import { watchConfigurations } from './configuration-watch.ts';
import {
  configurationHistory,
  deleteConfiguration,
  getConfiguration,
  listConfigurations,
  putConfiguration,
} from './configurations.ts';
import type { ConfigurationEmitterEvents, SqliteContext } from './context.ts';
import { openDatabase } from './database.ts';
import { deleteGroup, getGroup, listGroups, putGroup } from './groups.ts';
import { createOrder, finishOrder, getOrder, listOrders } from './orders.ts';
import { claimOnce } from './claims.ts';
import { getState, listState, putStateIfAbsent } from './server-state.ts';
import { importRecord } from './import.ts';
import { createToken, getToken, listTokens, revokeToken } from './tokens.ts';
import { addVersion, deleteComponent, deleteVersion, findVersion, listComponents, listVersions } from './versions.ts';
import { StoreGate } from '../store-gate.ts';

/** Opens (creating if needed) the embedded store rooted at `options.dir`. */
export async function openSqliteStore(options: { dir: string }): Promise<Store> {
  const dirs = blobDirs(options.dir);
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  await mkdir(dirs.blobs, { recursive: true, mode: 0o700 });
  await mkdir(dirs.uploads, { recursive: true, mode: 0o700 });
  const events = new EventEmitter<ConfigurationEmitterEvents>();
  // Every watcher adds listeners; many concurrent watchers are normal, not a leak.
  events.setMaxListeners(0);
  const ctx: SqliteContext = { database: openDatabase(join(options.dir, 'strata.db')), dirs, verified: new Map(), events };
  // Every operation refuses after close and reports a full disk as INSUFFICIENT_STORAGE.
  const gate = new StoreGate(ctx, storageError);
  const { run } = gate;

  return {
    kind: 'sqlite',
    putBlob: (source, putOptions) => run((c) => putBlob(c, source, putOptions)),
    getBlob: (sha256, range) => run((c) => getBlob(c, sha256, range)),
    statBlob: (sha256) => run((c) => findBlobRow(c.database, sha256)),
    verifyBlob: (sha256) => run((c) => verifyBlob(c, sha256)),
    deleteBlob: (sha256) => run((c) => deleteBlob(c, sha256)),
    sweep: (sweepOptions) => run((c) => sweep(c, sweepOptions)),
    addVersion: (input) => run((c) => addVersion(c.database, input)),
    getVersion: (component, version) => run((c) => findVersion(c.database, component, version)),
    listVersions: (component) => run((c) => listVersions(c.database, component)),
    listComponents: () => run((c) => listComponents(c.database)),
    deleteVersion: (component, version) => run((c) => deleteVersion(c.database, component, version)),
    deleteComponent: (component) => run((c) => deleteComponent(c.database, component)),
    getConfiguration: (name) => run((c) => getConfiguration(c.database, name)),
    listConfigurations: () => run((c) => listConfigurations(c.database)),
    putConfiguration: (input) => run((c) => putConfiguration(c, input)),
    deleteConfiguration: (name, deleteOptions) => run((c) => deleteConfiguration(c, name, deleteOptions)),
    configurationHistory: (name) => run((c) => configurationHistory(c.database, name)),
    watchConfigurations(watchOptions) {
      gate.assertOpen();
      return watchConfigurations(ctx, watchOptions);
    },
    createToken: (record) => run((c) => createToken(c.database, record)),
    getToken: (id) => run((c) => getToken(c.database, id)),
    listTokens: () => run((c) => listTokens(c.database)),
    revokeToken: (id, at) => run((c) => revokeToken(c.database, id, at)),
    getAgent: (name) => run((c) => getAgent(c.database, name)),
    listAgents: () => run((c) => listAgents(c.database)),
    putAgent: (record, expectedRevision) => run((c) => putAgent(c.database, record, expectedRevision)),
    putAssignment: (input) => run((c) => putAssignment(c.database, input)),
    deleteAssignment: (configuration, selector) => run((c) => deleteAssignment(c.database, configuration, selector)),
    listAssignments: () => run((c) => listAssignments(c.database)),
    putGroup: (input) => run((c) => putGroup(c.database, input)),
    getGroup: (name) => run((c) => getGroup(c.database, name)),
    listGroups: () => run((c) => listGroups(c.database)),
    deleteGroup: (name) => run((c) => deleteGroup(c.database, name)),
    createOrder: (input, orderOptions) => run((c) => createOrder(c.database, input, orderOptions)),
    finishOrder: (id, outcome) => run((c) => finishOrder(c.database, id, outcome)),
    getOrder: (id) => run((c) => getOrder(c.database, id)),
    listOrders: (listOptions) => run((c) => listOrders(c.database, listOptions)),
    appendAudit: (entry) => run((c) => appendAudit(c.database, entry)),
    listAudit: (auditOptions) => run((c) => listAudit(c.database, auditOptions)),
    getState: (key) => run((c) => getState(c.database, key)),
    putStateIfAbsent: (key, value) => run((c) => putStateIfAbsent(c.database, key, value)),
    listState: () => run((c) => listState(c.database)),
    claimOnce: (key, ttlMs) => run((c) => claimOnce(c.database, key, ttlMs)),
    importRecord: (record) => run((c) => importRecord(c, record)),
    async close() {
      if (gate.closed) return;
      gate.closed = true;
      events.emit('close');
      ctx.database.db.close();
    },
  };
}
