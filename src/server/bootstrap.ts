/**
 * First start: create the first admin token and a join token, and leave them in the data
 * directory (mode 0600) as `admin.env`, ready to `source`, and `join-token`. Later starts only
 * refresh the address and fingerprint lines of `admin.env`; secrets are never printed or logged.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { generateApiToken, generateJoinToken } from '../core/tokens.ts';
import type { Store } from '../store/contract.ts';

/** Where the first-start files live. */
export function bootstrapFiles(dataDir: string): { adminEnv: string; joinToken: string } {
  return { adminEnv: path.join(dataDir, 'admin.env'), joinToken: path.join(dataDir, 'join-token') };
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Renders admin.env from its values. */
function renderAdminEnv(values: { server: string; token: string; fingerprint?: string }): string {
  const lines = [
    '# Strata operator credentials (admin). Keep this file private: source it, do not share it.',
    `STRATA_SERVER=${values.server}`,
    `STRATA_TOKEN=${values.token}`,
  ];
  if (values.fingerprint) lines.push(`STRATA_FINGERPRINT=${values.fingerprint}`);
  return `${lines.map((line) => (line.startsWith('#') ? line : `export ${line}`)).join('\n')}\n`;
}

/**
 * Creates the first admin token and join token when the store has never been bootstrapped, and
 * (re)writes admin.env with the current address. Returns whether this was the first start.
 */
export async function bootstrap(store: Store, options: { dataDir: string; serverUrl: string; caFingerprint?: string }): Promise<{ firstStart: boolean }> {
  const files = bootstrapFiles(options.dataDir);
  const marker = `bootstrap-${process.pid}-${Date.now()}`;
  const firstStart = (await store.putStateIfAbsent('bootstrapped', marker)) === marker;
  if (firstStart) {
    const now = new Date().toISOString();
    const admin = generateApiToken();
    await store.createToken({ id: admin.id, kind: 'api', role: 'admin', name: 'bootstrap-admin', secretHash: admin.secretHash, createdAt: now, createdBy: 'server' });
    await writeFileAtomic(files.adminEnv, renderAdminEnv({ server: options.serverUrl, token: admin.text, ...(options.caFingerprint ? { fingerprint: options.caFingerprint } : {}) }), 0o600);
    if (options.caFingerprint) {
      const join = generateJoinToken(options.caFingerprint);
      await store.createToken({ id: join.id, kind: 'join', role: 'agent', name: 'bootstrap-join', secretHash: join.secretHash, createdAt: now, createdBy: 'server' });
      await writeFileAtomic(files.joinToken, `${join.text}\n`, 0o600);
    }
    await store.appendAudit({ actor: 'server', action: 'server.bootstrap', target: options.dataDir, result: 'ok', details: { adminTokenId: admin.id } });
    return { firstStart };
  }
  const existing = await readOptional(files.adminEnv);
  const token = existing ? /STRATA_TOKEN=(\S+)/.exec(existing)?.[1] : undefined;
  if (token) {
    const updated = renderAdminEnv({ server: options.serverUrl, token, ...(options.caFingerprint ? { fingerprint: options.caFingerprint } : {}) });
    if (updated !== existing) await writeFileAtomic(files.adminEnv, updated, 0o600);
  }
  return { firstStart };
}
