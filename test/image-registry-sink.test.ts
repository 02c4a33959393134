/**
 * The importer over the registry sink, in process with a real SQLite store: what the SSH console
 * runs when `docker save` arrives on an exec channel. The imported layers are unpacked with the
 * agent's own unpacker and compared with the merged tree; a refused image stores no configuration.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { Registry } from '../src/core/registry.ts';
import { isStrataError } from '../src/core/errors.ts';
import { createRegistrySink, importImage, type ImageSink } from '../src/core/image/index.ts';
import { unpackLayers } from '../src/agent/unpack/index.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../src/store/contract.ts';
import { legacyArchive, mergedTree, ociArchive, type ImageSpec } from './helpers/image-archive.ts';

let root: string;
let store: Store;
let registry: Registry;

const SPEC: ImageSpec = {
  ref: 'app:7',
  layers: [
    [{ path: 'opt/', type: 'dir' }, { path: 'opt/app/', type: 'dir' }, { path: 'opt/app/run', content: '#!/bin/sh\n', mode: 0o755 }, { path: 'opt/app/data/', type: 'dir' }, { path: 'opt/app/data/old', content: 'old' }, { path: 'tmp.txt', content: 'gone soon' }],
    [{ path: 'opt/app/data/', type: 'dir' }, { path: 'opt/app/data/.wh..wh..opq' }, { path: 'opt/app/data/new', content: 'new' }, { path: '.wh.tmp.txt' }, { path: 'link', type: 'symlink', target: 'opt/app/run' }],
  ],
  config: { Entrypoint: ['/opt/app/run'], Cmd: ['serve'], Env: ['A=1'] },
};

describe('image import through the registry sink', () => {
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'strata-image-sink-'));
    store = await openSqliteStore({ dir: path.join(root, 'store') });
    registry = new Registry(store);
  });
  after(async () => {
    await store?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('stores versions and the configuration, audited as the console user, and the agent unpacks the merged tree', async () => {
    const sink = createRegistrySink(registry, 'ssh:alice');
    const result = await importImage(Readable.from([ociArchive(SPEC, { gzip: true })]), { service: true, tempDir: root }, sink);
    assert.equal(result.configuration, 'app.7');
    assert.equal(result.changed, true);
    const configuration = await registry.configuration('app.7');
    assert.deepEqual(configuration.layers.map((l) => `${l.component}:${l.version}`), result.layers.map((l) => `${l.component}:${l.blob}`));
    assert.deepEqual((configuration.settings?.['service'] as { command: string; args: string[] }).command, 'opt/app/run');
    assert.deepEqual((configuration.settings?.['service'] as { command: string; args: string[] }).args, ['serve']);
    const audit = await store.listAudit({ limit: 50 });
    assert.ok(audit.some((entry) => entry.actor === 'ssh:alice' && entry.action === 'configuration.put' && entry.target === 'app.7'), 'audited as the console user');

    const layers = [];
    for (const layer of configuration.layers) {
      const file = path.join(root, `${layer.blob}.tar.gz`);
      await pipeline((await store.getBlob(layer.blob)).stream, createWriteStream(file));
      layers.push({ name: layer.component, path: file });
    }
    const target = path.join(root, 'release');
    await unpackLayers({ layers, target, limits: { maxFiles: 1000, maxBytes: 1 << 20 } });
    for (const [entry, node] of mergedTree(SPEC.layers)) {
      const full = path.join(target, entry);
      const info = await lstat(full);
      if (node.type === 'file') assert.equal(await readFile(full, 'utf8'), node.content, entry);
      if (node.type === 'symlink') assert.equal(await readlink(full), node.target, entry);
      if (node.type === 'dir') assert.ok(info.isDirectory(), entry);
    }
    await assert.rejects(lstat(path.join(target, 'tmp.txt')), { code: 'ENOENT' });
    await assert.rejects(lstat(path.join(target, 'opt/app/data/old')), { code: 'ENOENT' });
  });

  it('an import that loses a race to another import of the same image reuses its versions and configuration', async () => {
    const real = createRegistrySink(registry, 'ssh:bob');
    const spec = { ...SPEC, ref: 'raced:1' };
    let competitor: Awaited<ReturnType<typeof importImage>> | undefined;
    let stale = false;
    // The competing import runs in full between this one's version check and its writes.
    const racing: ImageSink = {
      ...real,
      async addVersion(component, version, blob) {
        competitor ??= await importImage(Readable.from([legacyArchive(spec)]), { tempDir: root }, real);
        return real.addVersion(component, version, blob);
      },
      async getConfiguration(name) {
        const found = await real.getConfiguration(name);
        // The first read is stale: it says the configuration is not there yet.
        if (competitor && !stale) {
          stale = true;
          return undefined;
        }
        return found;
      },
    };
    const result = await importImage(Readable.from([legacyArchive(spec)]), { tempDir: root }, racing);
    assert.equal(competitor?.changed, true);
    assert.ok(result.layers.every((l) => !l.added), 'versions the competitor added are reused');
    assert.equal(result.changed, false);
    assert.equal((await registry.configuration('raced.1')).revision, 1);
  });

  it('a second import of the same image reuses everything; a refused image leaves no configuration', async () => {
    const sink = createRegistrySink(registry, 'ssh:alice');
    const again = await importImage(Readable.from([legacyArchive(SPEC)]), { service: true, tempDir: root }, sink);
    assert.equal(again.changed, false);
    assert.ok(again.layers.every((l) => !l.added));

    const bad: ImageSpec = { ref: 'bad:1', layers: [[{ path: 'ok', content: 'x' }], [{ path: '/abs', content: 'x' }]] };
    await assert.rejects(importImage(Readable.from([legacyArchive(bad)]), { tempDir: root }, sink), (error) => isStrataError(error, 'UNSAFE_ARCHIVE_ENTRY') && /layer 1: unsafe archive entry "\/abs": path is absolute/.test(error.message));
    assert.equal(await store.getConfiguration('bad.1'), undefined);
    await assert.rejects(importImage(Readable.from([legacyArchive({ ...SPEC, ref: 'big-manifest:1' })]), { tempDir: root, limits: { maxManifestBytes: 64 } }, sink), (error) => isStrataError(error, 'IMAGE_TOO_LARGE') && /^manifest "manifest\.json" is \d+ bytes, over the limit of 64$/.test(error.message));
    assert.equal(await store.getConfiguration('big-manifest.1'), undefined);
    assert.equal(await store.getVersion('bad.1.l0', again.layers[0]!.version), undefined, 'no version before the whole image is checked');
    assert.ok(!(await store.listComponents()).some((c) => c.name.startsWith('bad.1')), 'no component either');
  });
});
