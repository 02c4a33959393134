/**
 * The server's own CA: created once, reused, never silently replaced; the server certificate is
 * re-issued when it no longer fits. Certificates are checked with Node's own X509 parser.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ensureServerTls } from '../src/server/tls.ts';
import { certificateFingerprint, parseFingerprint } from '../src/lib/fingerprint.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-tls-ca-'));
  dirs.push(dir);
  return dir;
}

after(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** The certificates of a PEM chain, leaf first. */
function chain(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((one) => new X509Certificate(one));
}

describe('ensureServerTls', () => {
  it('creates a CA and a server certificate on first start', async () => {
    const dataDir = await tempDir();
    const tls = await ensureServerTls(dataDir, ['strata.example.com', '10.1.2.3', '[2001:db8::7]']);

    assert.equal((await stat(join(dataDir, 'tls'))).mode & 0o777, 0o700);
    for (const name of ['ca.key', 'server.key']) {
      assert.equal((await stat(join(dataDir, 'tls', name))).mode & 0o777, 0o600, name);
    }
    assert.equal(await readFile(join(dataDir, 'tls', 'ca.crt'), 'utf8'), tls.caCert);

    const ca = new X509Certificate(tls.caCert);
    assert.equal(ca.ca, true);
    assert.equal(ca.issuer, ca.subject);
    assert.ok(ca.verify(ca.publicKey), 'CA is self-signed');
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const caYears = (ca.validToDate.getTime() - Date.now()) / (365 * DAY_MS);
    assert.ok(caYears > 9.9 && caYears <= 10, `CA valid for ${caYears} years`);
    assert.ok(ca.checkPrivateKey(createPrivateKey(await readFile(join(dataDir, 'tls', 'ca.key'), 'utf8'))));

    const [leaf, sentCa, extra] = chain(tls.cert);
    assert.ok(leaf && sentCa && extra === undefined, 'chain is leaf + CA');
    assert.equal(sentCa.fingerprint256, ca.fingerprint256);
    assert.equal(leaf.ca, false);
    assert.equal(leaf.issuer, ca.subject);
    assert.ok(leaf.checkIssued(ca));
    assert.ok(leaf.verify(ca.publicKey), 'server cert is signed by the CA');
    assert.ok(leaf.checkPrivateKey(createPrivateKey(tls.key)));
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    const leafDays = (leaf.validToDate.getTime() - Date.now()) / DAY_MS;
    assert.ok(leafDays > 360 && leafDays <= 366, `server cert valid for ${leafDays} days`);

    for (const host of ['localhost', hostname().toLowerCase(), 'strata.example.com']) {
      assert.equal(leaf.checkHost(host), host, host);
    }
    for (const ip of ['127.0.0.1', '::1', '10.1.2.3', '2001:db8::7']) assert.equal(leaf.checkIP(ip), ip, ip);
    assert.equal(leaf.checkHost('other.example.com'), undefined);
    assert.equal(leaf.checkIP('10.1.2.4'), undefined);
    // IP addresses are IP SANs, not DNS names a resolver could spoof.
    assert.doesNotMatch(leaf.subjectAltName ?? '', /DNS:10\.1\.2\.3/);

    assert.equal(tls.fingerprint, certificateFingerprint(tls.caCert));
    assert.equal(tls.fingerprint, ca.fingerprint256.replace(/:/g, '').toLowerCase());
  });

  it('reuses the CA and the server certificate on later starts', async () => {
    const dataDir = await tempDir();
    const first = await ensureServerTls(dataDir, ['a.example.com']);
    const second = await ensureServerTls(dataDir, ['A.example.com']);
    assert.equal(second.fingerprint, first.fingerprint);
    assert.equal(second.cert, first.cert);
    assert.equal(second.key, first.key);
  });

  it('re-issues the server certificate for a new host, with the same CA', async () => {
    const dataDir = await tempDir();
    const first = await ensureServerTls(dataDir, ['a.example.com']);
    const second = await ensureServerTls(dataDir, ['b.example.com']);
    assert.equal(second.fingerprint, first.fingerprint);
    assert.equal(second.caCert, first.caCert);
    const leaf = chain(second.cert)[0]!;
    assert.notEqual(leaf.serialNumber, chain(first.cert)[0]!.serialNumber);
    assert.equal(leaf.checkHost('b.example.com'), 'b.example.com');
    assert.equal(leaf.checkHost('a.example.com'), undefined, 'covers what this start asked for');
    assert.ok(leaf.verify(new X509Certificate(first.caCert).publicKey));
  });

  it('re-issues a missing or corrupt server certificate', async () => {
    const dataDir = await tempDir();
    const first = await ensureServerTls(dataDir, []);
    await rm(join(dataDir, 'tls', 'server.crt'));
    const second = await ensureServerTls(dataDir, []);
    assert.notEqual(second.cert, first.cert);
    await writeFile(join(dataDir, 'tls', 'server.crt'), 'garbage');
    const third = await ensureServerTls(dataDir, []);
    assert.equal(third.fingerprint, first.fingerprint);
    assert.ok(chain(third.cert)[0]!.verify(new X509Certificate(first.caCert).publicKey));
  });

  it('re-issues a server certificate that expires within 30 days', async () => {
    const dataDir = await tempDir();
    const first = await ensureServerTls(dataDir, []);
    const serverCrt = join(dataDir, 'tls', 'server.crt');
    // Control: the same certificate with 60 days left is kept, so only expiry triggers below.
    const sixtyDays = await issueCopy(dataDir, chain(first.cert)[0]!, 60 * DAY_MS);
    await writeFile(serverCrt, sixtyDays);
    assert.equal(chain((await ensureServerTls(dataDir, [])).cert)[0]!.raw.toString('base64'), new X509Certificate(sixtyDays).raw.toString('base64'));
    await writeFile(serverCrt, await issueCopy(dataDir, chain(first.cert)[0]!, 20 * DAY_MS));
    const second = await ensureServerTls(dataDir, []);
    const days = (chain(second.cert)[0]!.validToDate.getTime() - Date.now()) / DAY_MS;
    assert.ok(days > 360, `re-issued for ${days} days`);
    assert.equal(second.fingerprint, first.fingerprint);
  });

  it('refuses a corrupt CA instead of replacing it', async () => {
    const dataDir = await tempDir();
    await ensureServerTls(dataDir, []);
    const caPath = join(dataDir, 'tls', 'ca.crt');
    await writeFile(caPath, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    await assert.rejects(ensureServerTls(dataDir, []), (error: Error) => {
      assert.match(error.message, /cannot load the server CA from .*tls/);
      assert.match(error.message, /restore it from a backup/);
      return true;
    });
    assert.match(await readFile(caPath, 'utf8'), /not a certificate/, 'the corrupt file is left for the operator');
  });

  it('refuses a CA key without its certificate', async () => {
    const dataDir = await tempDir();
    await ensureServerTls(dataDir, []);
    await rm(join(dataDir, 'tls', 'ca.crt'));
    await assert.rejects(ensureServerTls(dataDir, []), /server CA is incomplete: .*ca\.key exists but .*ca\.crt does not/);
  });

  it('rejects a host that is neither a name nor an address', async () => {
    await assert.rejects(ensureServerTls(await tempDir(), ['bad host']), /invalid TLS host "bad host"/);
  });
});

describe('certificateFingerprint', () => {
  it('gives the same canonical form for PEM and DER', async () => {
    const tls = await ensureServerTls(await tempDir(), []);
    const der = new X509Certificate(tls.caCert).raw;
    assert.match(tls.fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(certificateFingerprint(der), tls.fingerprint);
  });
});

describe('parseFingerprint', () => {
  const hex = '0123456789abcdef'.repeat(4);
  const colons = hex.toUpperCase().match(/../g)!.join(':');
  const good: Array<[string, string]> = [
    [hex, hex],
    [hex.toUpperCase(), hex],
    [colons, hex],
    [`sha256:${hex}`, hex],
    [`SHA256:${colons}`, hex],
    [`SHA-256:${hex}`, hex],
    [`  ${hex}\n`, hex],
  ];
  for (const [input, expected] of good) {
    it(`accepts ${JSON.stringify(input)}`, () => assert.equal(parseFingerprint(input), expected));
  }
  const bad: Array<[string, RegExp]> = [
    ['', /expected a SHA-256 fingerprint, 64 hex digits, got 0/],
    [hex.slice(0, 40), /got 40/],
    [hex + 'ab', /got 66/],
    [hex.slice(0, 63) + 'g', /invalid certificate fingerprint/],
    [`md5:${hex}`, /invalid certificate fingerprint/],
    [colons.replace(':', '::'), /invalid certificate fingerprint/],
    [hex.slice(0, 3) + ':' + hex.slice(3), /invalid certificate fingerprint/],
    [`${hex.slice(0, 32)} ${hex.slice(32)}`, /invalid certificate fingerprint/],
  ];
  for (const [input, message] of bad) {
    it(`rejects ${JSON.stringify(input)}`, () => assert.throws(() => parseFingerprint(input), message));
  }
});

/** A copy of `template` (same key, names and extensions), signed by the data dir's CA, expiring in `validMs`. */
async function issueCopy(dataDir: string, template: X509Certificate, validMs: number): Promise<string> {
  // ensureServerTls has loaded @peculiar/x509 and installed its reflect shim by now.
  const x509 = await import('@peculiar/x509');
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' } as const;
  const caKeyDer = createPrivateKey(await readFile(join(dataDir, 'tls', 'ca.key'), 'utf8')).export({ type: 'pkcs8', format: 'der' });
  const signingKey = await crypto.subtle.importKey('pkcs8', caKeyDer, algorithm, false, ['sign']);
  const original = new x509.X509Certificate(template.raw);
  const cert = await x509.X509CertificateGenerator.create({
    subject: original.subjectName,
    issuer: original.issuerName,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + validMs),
    publicKey: original.publicKey,
    signingKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: original.extensions,
  });
  return cert.toString('pem') + '\n';
}
