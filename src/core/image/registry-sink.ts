/**
 * The image sink over the registry and its store, for imports that run inside the server (the
 * SSH console reading `docker save` from an exec channel). Layers are stored straight into the
 * blob store: the importer wrote them itself after checking every entry, so the upload-time
 * inspection the HTTP route runs would only repeat those checks.
 */
import { createReadStream } from 'node:fs';
import type { Registry } from '../registry.ts';
import type { ImageSink } from './types.ts';

/** Options of the registry sink. */
export interface RegistrySinkOptions {
  /** Largest blob accepted, as the server's upload limit (default: no limit beyond the store's). */
  maxBlobBytes?: number;
}

/** An ImageSink that writes through `registry` as `actor` (audited like any other change). */
export function createRegistrySink(registry: Registry, actor: string, options: RegistrySinkOptions = {}): ImageSink {
  const { store } = registry;
  return {
    async checkLayers(layers) {
      await registry.resolveLayers(layers);
    },
    async findVersion(component, version) {
      return (await store.getVersion(component, version))?.blob;
    },
    async putBlob(file) {
      const info = await store.putBlob(createReadStream(file), options.maxBlobBytes === undefined ? {} : { maxBytes: options.maxBlobBytes });
      return info.sha256;
    },
    async addVersion(component, version, blob) {
      await registry.addVersion(actor, { component, version, blob });
    },
    async getConfiguration(name) {
      const found = await store.getConfiguration(name);
      if (!found) return undefined;
      return { revision: found.revision, id: found.id, layers: found.layers.map((l) => ({ component: l.component, version: l.version })), ...(found.settings ? { settings: found.settings } : {}) };
    },
    async putConfiguration(input) {
      const written = await registry.putConfiguration(actor, { ...input, note: 'import-image' });
      return { revision: written.revision, id: written.id };
    },
  };
}
