/**
 * The SSH front's host key: ECDSA P-256, created with node:crypto on the first start as a SEC1
 * PEM in `<data>/ssh_host_ecdsa_key` (mode 0600) and reused afterwards, never replaced silently.
 * Its fingerprint is OpenSSH's `SHA256:<base64 without padding>` of the public key blob, the
 * form deploy-tools logs and deploy-agent's `-fp` expects.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ssh2 from 'ssh2';
import { writeFileAtomic } from '../lib/atomic-file.ts';

/** The host key file's name inside the data directory. */
export const HOST_KEY_FILE = 'ssh_host_ecdsa_key';

/** A loaded host key: the PEM ssh2 serves and its fingerprint. */
export interface HostKey {
  pem: string;
  fingerprint: string;
}

/** OpenSSH's SHA256 fingerprint of a public key blob (SSH wire format). */
export function sshFingerprint(publicBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`;
}

/** Parses a host key PEM; throws an Error naming the file when ssh2 cannot use it. */
function loadHostKey(pem: string, file: string): HostKey {
  const parsed = ssh2.utils.parseKey(pem);
  if (parsed instanceof Error || !parsed.isPrivateKey()) {
    throw new Error(`SSH host key ${file} is not a usable private key${parsed instanceof Error ? `: ${parsed.message}` : ''}; move it away to create a new one`);
  }
  return { pem, fingerprint: sshFingerprint(parsed.getPublicSSH()) };
}

/** Loads `<dataDir>/ssh_host_ecdsa_key`, creating it on the first start. */
export async function ensureHostKey(dataDir: string): Promise<HostKey> {
  const file = path.join(dataDir, HOST_KEY_FILE);
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    pem = privateKey.export({ type: 'sec1', format: 'pem' }).toString();
    await writeFileAtomic(file, pem, 0o600);
  }
  return loadHostKey(pem, file);
}
