/** The CA shared through the store: one fingerprint for every replica, agreed on by concurrent first starts, migrated from a data directory, and a conflicting data directory refused. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CA_STATE_KEY, ensureServerTls } from '../src/server/tls.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** The certificates of a PEM chain, leaf first. */
function chain(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((c) => new X509Certificate(c));
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}

async function store(t: { after: (fn: () => Promise<void>) => void }) {
  const opened = await openSqliteStore({ dir: await tempDir(t) });
  t.after(() => opened.close());
  return opened;
}

describe('shared CA', () => {
  it('gives every replica the same CA and its own server certificate; the CA key stays in the store', async (t) => {
    const shared = await store(t);
    const [first, second] = [await tempDir(t), await tempDir(t)];
    const a = await ensureServerTls(first, ['a.example.net'], shared);
    const b = await ensureServerTls(second, ['b.example.net'], shared);
    assert.equal(a.fingerprint, b.fingerprint);
    assert.equal(a.caCert, b.caCert);
    assert.notEqual(a.key, b.key, 'each replica has its own server key');
    const [leafA, caA] = chain(a.cert);
    const [leafB] = chain(b.cert);
    assert.ok(leafA!.checkIssued(caA!) && leafB!.checkIssued(caA!) && leafB!.verify(caA!.publicKey));
    assert.equal(leafB!.checkHost('b.example.net'), 'b.example.net');
    for (const dir of [first, second]) {
      assert.equal(await readFile(join(dir, 'tls', 'ca.crt'), 'utf8'), a.caCert);
      assert.equal(await exists(join(dir, 'tls', 'ca.key')), false, 'no copy of the CA key on disk');
    }
    // A restart of a replica that holds only the CA certificate keeps working.
    assert.equal((await ensureServerTls(second, [], shared)).fingerprint, a.fingerprint);
  });

  it('concurrent first starts agree on one CA', async (t) => {
    const shared = await store(t);
    const dirs = await Promise.all([1, 2, 3, 4].map(() => tempDir(t)));
    const fingerprints = new Set((await Promise.all(dirs.map((dir) => ensureServerTls(dir, [], shared)))).map((tls) => tls.fingerprint));
    assert.equal(fingerprints.size, 1);
  });

  it('moves the CA of an existing data directory into an empty store, keeping its fingerprint', async (t) => {
    const dir = await tempDir(t);
    const before = await ensureServerTls(dir, []);
    const caKey = await readFile(join(dir, 'tls', 'ca.key'), 'utf8');
    const shared = await store(t);
    const after = await ensureServerTls(dir, [], shared);
    assert.equal(after.fingerprint, before.fingerprint);
    const stored = JSON.parse((await shared.getState(CA_STATE_KEY))!) as { cert: string; key: string };
    assert.equal(stored.cert, before.caCert);
    assert.equal(stored.key, caKey);
    assert.equal(await readFile(join(dir, 'tls', 'ca.key'), 'utf8'), caKey, 'the data directory is left as it was');
    // A new replica on that store gets the migrated CA.
    assert.equal((await ensureServerTls(await tempDir(t), [], shared)).fingerprint, before.fingerprint);
  });

  it('refuses a data directory whose CA differs from the store\'s, changing nothing', async (t) => {
    const shared = await store(t);
    const storeCa = await ensureServerTls(await tempDir(t), [], shared);
    const other = await tempDir(t);
    const own = await ensureServerTls(other, []);
    const ownKey = await readFile(join(other, 'tls', 'ca.key'), 'utf8');
    await assert.rejects(ensureServerTls(other, [], shared), (error: Error) => {
      assert.match(error.message, new RegExp(`the CA in .* is not the one the store holds \\(fingerprint ${own.fingerprint} here, ${storeCa.fingerprint} in the store\\)`));
      return true;
    });
    assert.equal(await readFile(join(other, 'tls', 'ca.key'), 'utf8'), ownKey);
    assert.equal(await readFile(join(other, 'tls', 'ca.crt'), 'utf8'), own.caCert);
    assert.equal(JSON.parse((await shared.getState(CA_STATE_KEY))!).cert, storeCa.caCert);
  });

  it('refuses an unreadable CA in the store rather than replacing it', async (t) => {
    const shared = await store(t);
    await shared.putStateIfAbsent(CA_STATE_KEY, '{"cert":"garbage","key":"garbage"}');
    await assert.rejects(ensureServerTls(await tempDir(t), [], shared), /the CA kept in the store \(server state "tls-ca"\) is unreadable/);
    assert.equal(await shared.getState(CA_STATE_KEY), '{"cert":"garbage","key":"garbage"}');
  });
});
