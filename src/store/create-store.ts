/** The one place that picks a storage backend. */
import type { Store } from './contract.ts';
import { openSqliteStore } from './sqlite/sqlite-store.ts';

/** Which backend to open, and where. */
export type StoreOptions = { kind: 'sqlite'; dir: string };

/** Opens the configured store. */
export async function createStore(options: StoreOptions): Promise<Store> {
  switch (options.kind) {
    case 'sqlite':
      return openSqliteStore({ dir: options.dir });
  }
}
