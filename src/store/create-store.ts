/** The one place that picks a storage backend. */
import type { Store } from './contract.ts';
import { openSqliteStore } from './sqlite/sqlite-store.ts';

/** Which backend to open, and where. */
export type StoreOptions =
  | { kind: 'sqlite'; dir: string }
  | {
    kind: 'nats';
    /** Server URLs of one NATS system (a cluster's nodes, or one server). */
    servers: string[];
    /** A `.creds` file. */
    creds?: string;
    user?: string;
    password?: string;
    /** CA to trust, and client certificate and key for mutual TLS (file paths). */
    tls?: { ca?: string; cert?: string; key?: string };
    /** Replicas of every stream and bucket (1, or 3 for a cluster). */
    replicas: number;
    /** Prefix of every stream, bucket and subject name (default `strata`). */
    prefix?: string;
    /** Where uploads are staged locally while they stream in (default: the OS temp dir). */
    spoolDir?: string;
  };

/** Opens the configured store. */
export async function createStore(options: StoreOptions): Promise<Store> {
  switch (options.kind) {
    case 'sqlite':
      return openSqliteStore({ dir: options.dir });
    case 'nats': {
      // Loaded on demand so the embedded store starts without the NATS client.
      const { openNatsStore } = await import('./nats/nats-store.ts');
      return openNatsStore(options);
    }
  }
}
