/**
 * The server's own certificate authority. On first start the server creates a CA and a server
 * certificate; clients pin the CA's fingerprint, so the CA is created once and never replaced,
 * while the server certificate is re-issued whenever it no longer fits.
 *
 * Given a store, the CA lives in the store's server state (`tls-ca`), shared by every replica:
 * concurrent first starts agree on one CA through `putStateIfAbsent`, a CA already in
 * `<dataDir>/tls/` is moved into an empty store on first start, and each replica issues its own
 * server certificate from the shared CA into its `<dataDir>/tls/` — one chain, one fingerprint.
 * Without a store (tests) the CA stays in `<dataDir>/tls/` only.
 */
import { X509Certificate, createPrivateKey, randomBytes, type webcrypto } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { certificateFingerprint } from '../lib/fingerprint.ts';
import type { Store } from '../store/contract.ts';


/** What the server needs to serve TLS and to tell clients what to pin. */
export interface ServerTls {
  /** Server private key, PEM. */
  key: string;
  /** Server certificate followed by the CA certificate, PEM: clients pinning the CA need the chain. */
  cert: string;
  /** CA certificate, PEM. */
  caCert: string;
  /** SHA-256 fingerprint of the CA certificate, canonical form (64 lower-case hex digits). */
  fingerprint: string;
}

type X509Module = typeof import('@peculiar/x509');

const DAY_MS = 24 * 60 * 60 * 1000;
const CA_VALIDITY_MS = 10 * 365 * DAY_MS;
const SERVER_VALIDITY_MS = 365 * DAY_MS;
const RENEW_BEFORE_MS = 30 * DAY_MS;
// Agents with a slightly slow clock would otherwise reject a certificate issued seconds ago.
const BACKDATE_MS = 60 * 60 * 1000;
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/;

/** The server state key of the shared CA: JSON `{ cert, key }` (PEM). */
export const CA_STATE_KEY = 'tls-ca';

/**
 * Loads the CA (from the store when given, else from `<dataDir>/tls/`) and the server certificate
 * from `<dataDir>/tls/`, creating what is missing; the server cert covers `hosts`.
 */
export async function ensureServerTls(dataDir: string, hosts: string[], store?: Pick<Store, 'getState' | 'putStateIfAbsent'>): Promise<ServerTls> {
  const dir = join(dataDir, 'tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const names = subjectAltNames(hosts);
  const ca = store ? await sharedCa(store, dir) : ((await loadCa(dir)) ?? (await createCa(dir)));
  let server = await loadServer(dir, ca.cert, names);
  if (server === undefined) server = await issueServer(dir, ca, names);
  return {
    key: server.key,
    cert: server.cert.trimEnd() + '\n' + ca.cert,
    caCert: ca.cert,
    fingerprint: certificateFingerprint(ca.cert),
  };
}

interface SubjectAltName {
  type: 'dns' | 'ip';
  value: string;
}

/** The loopback names, this machine's name and the requested hosts, normalised and deduplicated. */
function subjectAltNames(hosts: string[]): SubjectAltName[] {
  const seen = new Map<string, SubjectAltName>();
  const defaults = ['localhost', '127.0.0.1', '::1', hostname()];
  for (const [index, raw] of [...defaults, ...hosts].entries()) {
    // Users write IPv6 hosts as they appear in URLs.
    const host = raw.trim().replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (host === '') continue;
    let name: SubjectAltName;
    if (isIP(host) !== 0) name = { type: 'ip', value: host };
    else if (DNS_NAME.test(host)) name = { type: 'dns', value: host };
    // A machine name that is no valid DNS name must not keep the server from starting.
    else if (index < defaults.length) continue;
    else throw new Error(`invalid TLS host "${raw}": expected a DNS name or an IP address`);
    seen.set(`${name.type}:${name.value}`, name);
  }
  return [...seen.values()];
}

interface LoadedCa {
  cert: string;
  key: webcrypto.CryptoKey;
}

/** Reads the CA, or returns undefined when there is none yet; anything else is an error, never a new CA. */
async function loadCa(dir: string): Promise<LoadedCa | undefined> {
  const certPath = join(dir, 'ca.crt');
  const keyPath = join(dir, 'ca.key');
  const [cert, key] = await Promise.all([readOptional(certPath), readOptional(keyPath)]);
  if (cert === undefined && key === undefined) return undefined;
  const advice =
    `restore it from a backup, or delete ${dir} to create a new CA ` +
    `(every client and agent pinned to the old fingerprint must then be given the new one)`;
  if (cert === undefined || key === undefined) {
    const [present, missing] = cert === undefined ? [keyPath, certPath] : [certPath, keyPath];
    throw new Error(`server CA is incomplete: ${present} exists but ${missing} does not; ${advice}`);
  }
  try {
    return await parseCa(cert, key);
  } catch (error) {
    throw new Error(`cannot load the server CA from ${dir}: ${(error as Error).message}; ${advice}`, { cause: error });
  }
}

/** Checks a CA certificate and its key and imports the key for signing. */
async function parseCa(cert: string, key: string): Promise<LoadedCa> {
  const parsed = new X509Certificate(cert);
  const keyObject = createPrivateKey(key);
  if (!parsed.ca) throw new Error('the certificate is not a CA certificate');
  if (!parsed.checkPrivateKey(keyObject)) throw new Error('the key does not match the certificate');
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  const signingKey = await crypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
  return { cert: parsed.toString(), key: signingKey };
}

/**
 * The CA every replica shares, from the store. When the store has none yet, this replica offers
 * the CA of its data directory (an existing single server moving to a shared store) or a new one;
 * whichever offer the store keeps first wins. A data directory whose CA differs from the store's
 * is refused: agents pinned to one of the two would be cut off without notice.
 */
async function sharedCa(store: Pick<Store, 'getState' | 'putStateIfAbsent'>, dir: string): Promise<LoadedCa> {
  // A replica that already runs on the shared CA keeps only its certificate here.
  const certOnly = (await readOptional(join(dir, 'ca.key'))) === undefined ? await readOptional(join(dir, 'ca.crt')) : undefined;
  const local = certOnly !== undefined ? { cert: new X509Certificate(certOnly).toString() } : await loadCa(dir);
  let stored = await store.getState(CA_STATE_KEY);
  if (stored === undefined) {
    const offer = local && certOnly === undefined ? { cert: local.cert, key: await readFile(join(dir, 'ca.key'), 'utf8') } : await generateCa();
    stored = await store.putStateIfAbsent(CA_STATE_KEY, JSON.stringify(offer));
  }
  let ca: LoadedCa;
  try {
    const { cert, key } = JSON.parse(stored) as { cert?: unknown; key?: unknown };
    if (typeof cert !== 'string' || typeof key !== 'string') throw new Error('expected { cert, key }');
    ca = await parseCa(cert, key);
  } catch (error) {
    throw new Error(`the CA kept in the store (server state "${CA_STATE_KEY}") is unreadable: ${(error as Error).message}; restore the store from a backup`, { cause: error });
  }
  if (local && local.cert !== ca.cert) {
    throw new Error(
      `the CA in ${dir} is not the one the store holds (fingerprint ${certificateFingerprint(local.cert)} here, ` +
      `${certificateFingerprint(ca.cert)} in the store); start this replica with an empty --data, or remove ${join(dir, 'ca.crt')} ` +
      `and ${join(dir, 'ca.key')} after making sure no agent pins the old fingerprint`,
    );
  }
  // The certificate alone, for operators and clients that trust a CA file; the key stays in the store.
  if (!local) await writeFileAtomic(join(dir, 'ca.crt'), ca.cert, 0o644);
  return ca;
}

/** Creates the CA in `dir`. */
async function createCa(dir: string): Promise<LoadedCa> {
  const { cert, key } = await generateCa();
  // Key first: a certificate without its key could never be used, a key without a certificate is
  // reported by loadCa rather than silently replaced.
  await writeFileAtomic(join(dir, 'ca.key'), key, 0o600);
  await writeFileAtomic(join(dir, 'ca.crt'), cert, 0o644);
  return parseCa(cert, key);
}

/** Generates a CA: ECDSA P-256, ten years, allowed to sign certificates only; PEM certificate and key. */
async function generateCa(): Promise<{ cert: string; key: string }> {
  const x509 = await loadX509();
  const keys = await crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    // The date keeps CAs of reinstalled servers apart when an operator compares them by name.
    name: [{ CN: [`Strata CA ${hostname()} ${new Date(now).toISOString().slice(0, 10)}`], O: ['Strata'] }],
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + CA_VALIDITY_MS),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: new X509Certificate(cert.toString('pem') + '\n').toString(), key: await privateKeyPem(keys.privateKey) };
}

interface LoadedServer {
  cert: string;
  key: string;
}

/** Reads the server certificate if it is still fit: issued by this CA, far from expiry, covering every name. */
async function loadServer(dir: string, caPem: string, names: SubjectAltName[]): Promise<LoadedServer | undefined> {
  const [cert, key] = await Promise.all([readOptional(join(dir, 'server.crt')), readOptional(join(dir, 'server.key'))]);
  if (cert === undefined || key === undefined) return undefined;
  // Unlike the CA, the server certificate is ours to replace, so anything unreadable is re-issued.
  try {
    const parsed = new X509Certificate(cert);
    const ca = new X509Certificate(caPem);
    if (!parsed.checkIssued(ca) || !parsed.verify(ca.publicKey)) return undefined;
    if (!parsed.checkPrivateKey(createPrivateKey(key))) return undefined;
    if (parsed.validToDate.getTime() - Date.now() < RENEW_BEFORE_MS) return undefined;
    const covered = names.every((name) =>
      name.type === 'ip' ? parsed.checkIP(name.value) !== undefined : parsed.checkHost(name.value, { wildcards: false }) === name.value,
    );
    return covered ? { cert, key } : undefined;
  } catch {
    return undefined;
  }
}

/** Issues a server certificate for `names`, signed by the CA, with a fresh key. */
async function issueServer(dir: string, ca: LoadedCa, names: SubjectAltName[]): Promise<LoadedServer> {
  const x509 = await loadX509();
  const caCert = new x509.X509Certificate(ca.cert);
  const keys = await crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: [{ CN: [names.find((name) => name.value === hostname().toLowerCase())?.value ?? 'localhost'], O: ['Strata'] }],
    issuer: caCert.subjectName,
    notBefore: new Date(now - BACKDATE_MS),
    // Never outlive the CA: a chain whose root expires first fails verification anyway.
    notAfter: new Date(Math.min(now + SERVER_VALIDITY_MS, caCert.notAfter.getTime())),
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  const server = { cert: cert.toString('pem') + '\n', key: await privateKeyPem(keys.privateKey) };
  await writeFileAtomic(join(dir, 'server.key'), server.key, 0o600);
  await writeFileAtomic(join(dir, 'server.crt'), server.cert, 0o644);
  return server;
}

let x509Loaded: Promise<X509Module> | undefined;

/**
 * Loads @peculiar/x509 on first use (only a server generating certificates needs it), after the
 * reflect-metadata polyfill its dependency injection (tsyringe) requires.
 */
function loadX509(): Promise<X509Module> {
  x509Loaded ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(globalThis.crypto);
    return x509;
  })();
  return x509Loaded;
}

/** A random positive 128-bit serial number, as hex. */
function serialNumber(): string {
  const bytes = randomBytes(16);
  // DER integers are signed: a clear top bit keeps the serial positive, a set next bit keeps it 16 bytes.
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/** Exports a webcrypto private key as PKCS#8 PEM. */
async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

/** Reads a text file, or undefined when it does not exist. */
async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
}
