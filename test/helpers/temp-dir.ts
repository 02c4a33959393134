/** Temporary directories for tests, removed when the test ends. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Creates a temp dir and registers its removal with the test context's `after`. */
export async function tempDir(t: { after: (fn: () => Promise<void>) => void }, prefix = 'strata-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
