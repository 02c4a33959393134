/** What the pieces of the NATS backend share: the connection, the opened handles and the layout. */
import type { NatsConnection } from '@nats-io/transport-node';
import type { NatsHandles, NatsLayout } from './connection.ts';
import type { LocalBlobCache } from './blob-cache.ts';

/** The state one open NATS store passes to each of its parts. */
export interface NatsContext extends NatsHandles {
  readonly nc: NatsConnection;
  readonly layout: NatsLayout;
  /** Where uploads are staged locally for `beforeCommit` to re-read. */
  readonly spoolDir: string;
  /** Bytes per object-store chunk (one JetStream message each). */
  readonly chunkSize: number;
  /**
   * sha256 → fingerprint (object, meta revision, last chunk sequence) of the object when its bytes
   * last hashed correctly, so range reads need not re-hash a blob that has not changed since.
   */
  readonly verified: Map<string, string>;
  /** This replica's local copies of blobs, when it keeps them. */
  readonly blobCache?: LocalBlobCache;
  /** Aborted when the store closes: ends watches and long reads. */
  readonly closing: AbortSignal;
}
