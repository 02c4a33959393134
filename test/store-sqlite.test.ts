/** Runs the Store conformance suite against the embedded SQLite backend, one temp dir per test. */
import { mkdtemp, open, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStoreConformance } from '../src/store/conformance.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';

runStoreConformance('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-sqlite-'));
  let store = await openSqliteStore({ dir });
  return {
    store,
    async corruptBlob(sha256) {
      // Flip one byte in place: same size, as disk rot would leave it.
      const file = await open(join(dir, 'blobs', sha256.slice(0, 2), sha256), 'r+');
      try {
        const offset = Math.floor((await file.stat()).size / 2);
        const byte = Buffer.alloc(1);
        await file.read(byte, 0, 1, offset);
        byte[0] = (byte[0] ?? 0) ^ 0xff;
        await file.write(byte, 0, 1, offset);
      } finally {
        await file.close();
      }
    },
    async reopen() {
      await store.close();
      store = await openSqliteStore({ dir });
      return store;
    },
    async plantAbandonedUpload(ageMs) {
      const path = join(dir, 'uploads', 'abandoned.part');
      await writeFile(path, 'half an upload');
      const then = new Date(Date.now() - ageMs);
      await utimes(path, then, then);
    },
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
