/** The one place that picks a storage backend. */
import type { Store } from './contract.ts';
import { openSqliteStore } from './sqlite/sqlite-store.ts';
import type { NatsStoreOptions } from './nats/connection.ts';

/** Which backend to open, and where. */
export type StoreOptions = { kind: 'sqlite'; dir: string } | ({ kind: 'nats' } & NatsStoreOptions);

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
