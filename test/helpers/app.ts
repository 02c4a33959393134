/** An in-process app on a real SQLite store in a temp dir, with tokens of every role, for inject() tests. */
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/server/build-app.ts';
import type { ChannelTiming } from '../../src/server/channel/hub.ts';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { generateApiToken } from '../../src/core/tokens.ts';
import { createLogger } from '../../src/lib/logger.ts';
import type { Store } from '../../src/store/contract.ts';
import { tempDir } from './temp-dir.ts';

/** The CA fingerprint the test app embeds in join tokens. */
export const TEST_CA = 'a'.repeat(64);

/** The app, its store, and a bearer header per role. */
export interface TestApp {
  app: FastifyInstance;
  store: Store;
  auth: { admin: Record<string, string>; deployer: Record<string, string>; viewer: Record<string, string> };
  tokenIds: { admin: string; deployer: string; viewer: string };
}

/**
 * Builds the app on a fresh store (with the channel's timing, if given), returned with the store's
 * directory for tests that look at its files; everything is closed and removed after the test.
 */
export async function testApp(
  t: { after: (fn: () => Promise<void>) => void },
  limits?: Partial<{ maxUploadBytes: number; maxEntries: number; maxUnpackedBytes: number }>,
  channel?: ChannelTiming,
): Promise<TestApp & { dir: string }> {
  const dir = await tempDir(t);
  const store = await openSqliteStore({ dir });
  const app = await buildApp({
    store, logger: createLogger({ level: 'silent' }), version: 'test', caFingerprint: TEST_CA, channel,
    limits: {
      maxUploadBytes: limits?.maxUploadBytes ?? 64 * 1024 * 1024, maxJsonBytes: 1024 * 1024,
      archive: { maxEntries: limits?.maxEntries ?? 10_000, maxUnpackedBytes: limits?.maxUnpackedBytes ?? 1024 ** 3 },
    },
  });
  t.after(async () => {
    await app.close();
    await store.close();
  });
  return { app, store, dir, ...(await roleTokens(store)) };
}

/** Creates an API token of every role in the store: a bearer header and the token id per role. */
export async function roleTokens(store: Store): Promise<Pick<TestApp, 'auth' | 'tokenIds'>> {
  const auth = {} as TestApp['auth'];
  const tokenIds = {} as TestApp['tokenIds'];
  for (const role of ['admin', 'deployer', 'viewer'] as const) {
    const token = generateApiToken();
    await store.createToken({ id: token.id, kind: 'api', role, name: `${role}-token`, secretHash: token.secretHash, createdAt: new Date().toISOString(), createdBy: 'test' });
    auth[role] = { authorization: `Bearer ${token.text}` };
    tokenIds[role] = token.id;
  }
  return { auth, tokenIds };
}
