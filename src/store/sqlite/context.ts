/**
 * What the pieces of the SQLite backend share: the database, the blob directories, the
 * in-process configuration event emitter and the memory of verified blob files.
 */
import type { EventEmitter } from 'node:events';
import type { ConfigurationEvent } from '../contract.ts';
import type { BlobDirs } from './blob-files.ts';
import type { Database } from './database.ts';

/** The state one open SQLite store passes to each of its parts. */
export interface SqliteContext {
  readonly database: Database;
  readonly dirs: BlobDirs;
  /**
   * sha256 → fingerprint (size, mtime, inode) of the file when its bytes last hashed correctly,
   * so range reads need not re-hash a blob that has not changed since.
   */
  readonly verified: Map<string, string>;
  /** Emits `event` with each committed ConfigurationEvent, and `close` when the store closes. */
  readonly events: EventEmitter<ConfigurationEmitterEvents>;
}

/** The events of the in-process configuration emitter. */
export interface ConfigurationEmitterEvents {
  event: [ConfigurationEvent];
  close: [];
}
