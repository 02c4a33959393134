/**
 * The agent's identity: enrolled once with a join token, kept in `DIR/identity.json` (mode 0600)
 * with its Ed25519 key pair and the server's CA, so later starts need neither the token nor a
 * fingerprint. The join token carries the CA fingerprint: the agent verifies the server with it
 * before sending the token's secret.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { createHttpClient, fetchPinnedCertificate } from '../lib/http-client.ts';
import { parseToken } from '../core/tokens.ts';
import { StrataError } from '../core/errors.ts';
import { isErrorCode } from '../protocol/error-codes.ts';
import { EnrollResponseSchema, type Inventory } from '../protocol/agent.ts';
import { STRATA_VERSION } from '../lib/version.ts';

/** What identity.json holds. */
export const IdentitySchema = z.object({
  name: z.string(),
  server: z.string(),
  caPem: z.string(),
  caFingerprint: z.string(),
  publicKey: z.string(),
  privateKey: z.string(),
  enrolledAt: z.string(),
});
/** An enrolled agent's identity. */
export type Identity = z.infer<typeof IdentitySchema>;

/** Where the identity lives in an agent directory. */
export function identityFile(dir: string): string {
  return path.join(dir, 'identity.json');
}

/** Reads the identity, or undefined when the agent has not enrolled yet. */
export async function loadIdentity(dir: string): Promise<Identity | undefined> {
  let text: string;
  try {
    text = await readFile(identityFile(dir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = IdentitySchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new StrataError('BAD_REQUEST', `${identityFile(dir)} is damaged; remove it and enroll again with a join token`);
  return parsed.data;
}

/**
 * Enrolls with the server and stores the new identity; the server is verified before the token's
 * secret is sent. `remember` is what later starts use as --server (every replica given, comma-separated).
 */
export async function enroll(dir: string, input: { server: string; joinToken: string; name: string; labels: Record<string, string>; tracks: string[]; inventory: Inventory; remember?: string }): Promise<Identity> {
  const token = parseToken(input.joinToken);
  if (!token || token.kind !== 'join' || !token.caFingerprint) throw new StrataError('UNAUTHENTICATED', 'the join token is malformed: expected SJ1.<fingerprint>.<id>_<secret>');
  const caPem = await fetchPinnedCertificate(input.server, token.caFingerprint);
  const { publicKey, privateKey } = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const client = createHttpClient({ baseUrl: input.server, caPem, token: input.joinToken, userAgent: `strata-agent/${STRATA_VERSION}` });
  try {
    const response = await client.request({
      method: 'POST', path: '/v1/agents/enroll',
      json: { name: input.name, publicKey, labels: input.labels, tracks: input.tracks, inventory: input.inventory },
    });
    const body = await response.json<{ code?: string; message?: string }>();
    if (response.status >= 400) throw new StrataError(isErrorCode(body.code) ? body.code : 'UNAUTHENTICATED', `enrollment refused: ${body.message ?? response.status}`);
    const enrolled = EnrollResponseSchema.parse(body);
    const identity: Identity = { name: enrolled.name, server: input.remember ?? input.server, caPem, caFingerprint: token.caFingerprint, publicKey, privateKey, enrolledAt: enrolled.enrolledAt };
    await writeFileAtomic(identityFile(dir), `${JSON.stringify(identity, null, 2)}\n`, 0o600);
    return identity;
  } finally {
    client.close();
  }
}

/** What the agent tells the server about its machine. */
export async function collectInventory(): Promise<Inventory> {
  let osName = `${os.type()} ${os.release()}`;
  try {
    const release = await readFile('/etc/os-release', 'utf8');
    osName = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(release)?.[1] ?? osName;
  } catch {
    // Not every system has os-release; the kernel name will do.
  }
  return {
    hostname: os.hostname(), os: osName, kernel: os.release(), arch: os.arch(),
    cpus: os.availableParallelism(), memoryBytes: os.totalmem(), agentVersion: STRATA_VERSION,
  };
}
