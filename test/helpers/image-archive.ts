/**
 * Builds image archives the way `docker save` writes them, for the import tests: layer tars with
 * node-tar's header encoder (files, directories, symlinks, hard links, modes, whiteout and opaque
 * markers, and deliberately bad entries), wrapped in Docker's legacy layout (`manifest.json`,
 * `<id>/layer.tar`) or the OCI image layout (`index.json`, `blobs/sha256/…`, optionally a
 * multi-platform index). Also the independent model of the merged tree the tests compare with.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';

/** One tar entry to write. */
export interface TarItem {
  path: string;
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'fifo';
  content?: string | Buffer;
  mode?: number;
  /** Symlink or hard link target. */
  target?: string;
}

/** What an image holds. */
export interface ImageSpec {
  /** Tag as `docker save` names it (`nginx:1.27`); none for an untagged image. */
  ref?: string;
  layers: TarItem[][];
  config?: { Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; User?: string };
}

const TYPES = { file: 'File', dir: 'Directory', symlink: 'SymbolicLink', link: 'Link', fifo: 'FIFO' } as const;

/** sha256 in hex. */
export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A plain tar of the items, in order, with two zero blocks at the end. */
export function tarBytes(items: TarItem[]): Buffer {
  const parts: Buffer[] = [];
  for (const item of items) {
    const type = item.type ?? 'file';
    const body = type === 'file' ? Buffer.from(item.content ?? '') : Buffer.alloc(0);
    const header = Buffer.alloc(512);
    new Header({
      path: type === 'dir' && !item.path.endsWith('/') ? `${item.path}/` : item.path,
      mode: item.mode ?? (type === 'dir' ? 0o755 : 0o644),
      uid: 0, gid: 0, size: body.length, mtime: new Date('2024-01-02T03:04:05Z'),
      type: TYPES[type], linkpath: item.target ?? '', uname: 'root', gname: 'root',
    }).encode(header);
    parts.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** The image config document Docker writes. */
function configDocument(spec: ImageSpec, diffIds: string[], platform = 'linux/amd64'): Buffer {
  const [os, architecture] = platform.split('/');
  return Buffer.from(JSON.stringify({
    architecture, os, created: '2024-01-02T03:04:05Z',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...spec.config },
    rootfs: { type: 'layers', diff_ids: diffIds.map((id) => `sha256:${id}`) },
  }));
}

/** A `docker save` archive in the legacy layout; the manifest comes last, as Docker writes it. */
export function legacyArchive(spec: ImageSpec, options: { manifest?: unknown; dropLayer?: number; replaceLayer?: { index: number; bytes: Buffer } } = {}): Buffer {
  const layerTars = spec.layers.map((items, index) => (index === options.replaceLayer?.index ? options.replaceLayer.bytes : tarBytes(items)));
  const ids = layerTars.map((bytes) => sha256(bytes));
  const config = configDocument(spec, ids);
  const configName = `${sha256(config)}.json`;
  const items: TarItem[] = [];
  layerTars.forEach((bytes, index) => {
    items.push({ path: `${ids[index]}/`, type: 'dir' }, { path: `${ids[index]}/VERSION`, content: '1.0' });
    if (index !== options.dropLayer) items.push({ path: `${ids[index]}/layer.tar`, content: bytes });
  });
  const manifest = options.manifest ?? [{ Config: configName, RepoTags: spec.ref ? [spec.ref] : null, Layers: ids.map((id) => `${id}/layer.tar`) }];
  items.push({ path: configName, content: config }, { path: 'manifest.json', content: JSON.stringify(manifest) });
  return tarBytes(items);
}

/** The media types of OCI and of Docker's registry format, which both appear in image layouts. */
const OCI_TYPES = {
  layer: 'application/vnd.oci.image.layer.v1.tar', gzipLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  config: 'application/vnd.oci.image.config.v1+json', manifest: 'application/vnd.oci.image.manifest.v1+json', index: 'application/vnd.oci.image.index.v1+json',
};
const DOCKER_TYPES = {
  layer: 'application/vnd.docker.image.rootfs.diff.tar', gzipLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  config: 'application/vnd.docker.container.image.v1+json', manifest: 'application/vnd.docker.distribution.manifest.v2+json', index: 'application/vnd.docker.distribution.manifest.list.v2+json',
};

/** Adds a blob to `items` and returns its descriptor. */
function addBlob(items: TarItem[], bytes: Buffer, mediaType: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const digest = sha256(bytes);
  if (!items.some((item) => item.path === `blobs/sha256/${digest}`)) items.push({ path: `blobs/sha256/${digest}`, content: bytes });
  return { mediaType, digest: `sha256:${digest}`, size: bytes.length, ...extra };
}

/**
 * An OCI image layout archive (as `docker save` writes since Docker 25, without its legacy
 * manifest.json). `gzip` compresses the layer blobs; `platforms` makes a multi-platform index
 * whose per-platform configs add `PLATFORM=<os/arch>` to Env, plus an attestation manifest.
 */
export function ociArchive(spec: ImageSpec, options: { gzip?: boolean; platforms?: string[]; legacyManifest?: 'blobs' | 'symlinks'; dropLayer?: number; tamperLayer?: number; mediaTypes?: 'oci' | 'docker'; alsoTagged?: string[] } = {}): Buffer {
  const types = options.mediaTypes === 'docker' ? DOCKER_TYPES : OCI_TYPES;
  const items: TarItem[] = [{ path: 'blobs/', type: 'dir' }, { path: 'blobs/sha256/', type: 'dir' }];
  const layerTars = spec.layers.map((layer) => tarBytes(layer));
  const layers = layerTars.map((bytes) => (options.gzip ? addBlob(items, gzipSync(bytes), types.gzipLayer) : addBlob(items, bytes, types.layer)));
  const manifestFor = (platform: string | undefined): Record<string, unknown> => {
    const withPlatform = platform ? { ...spec, config: { ...spec.config, Env: [...(spec.config?.Env ?? []), `PLATFORM=${platform}`] } } : spec;
    const config = addBlob(items, configDocument(withPlatform, layerTars.map((bytes) => sha256(bytes)), platform), types.config);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: types.manifest, config, layers }));
    const [os, architecture] = (platform ?? 'linux/amd64').split('/');
    return addBlob(items, manifest, types.manifest, platform ? { platform: { os, architecture } } : {});
  };
  const annotationsOf = (ref: string): Record<string, string> => ({ 'io.containerd.image.name': `docker.io/library/${ref}`, 'org.opencontainers.image.ref.name': ref.split(':')[1] ?? 'latest' });
  const annotations = spec.ref ? annotationsOf(spec.ref) : undefined;
  let top: Record<string, unknown>;
  if (options.platforms) {
    const attestation = addBlob(items, Buffer.from('{"schemaVersion":2,"layers":[]}'), 'application/vnd.oci.image.manifest.v1+json', {
      platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
    });
    const nested = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: types.index, manifests: [...options.platforms.map((p) => manifestFor(p)), attestation] }));
    top = addBlob(items, nested, types.index);
  } else {
    top = manifestFor(undefined);
  }
  if (options.legacyManifest) {
    const digests = layers.map((layer) => String(layer.digest).slice('sha256:'.length));
    const configBlob = items.find((item) => item.path.startsWith('blobs/sha256/') && String(item.content).includes('"rootfs"'))!;
    const layerPaths = digests.map((digest) => (options.legacyManifest === 'blobs' ? `blobs/sha256/${digest}` : `${digest}/layer.tar`));
    if (options.legacyManifest === 'symlinks') {
      for (const digest of digests) items.push({ path: `${digest}/`, type: 'dir' }, { path: `${digest}/layer.tar`, type: 'symlink', target: `../blobs/sha256/${digest}` });
    }
    const tags = spec.ref ? [spec.ref, ...(options.alsoTagged ?? [])] : [];
    const entries = tags.length === 0 ? [null] : tags.map((tag) => [tag]);
    items.push({ path: 'manifest.json', content: JSON.stringify(entries.map((repoTags) => ({ Config: configBlob.path, RepoTags: repoTags, Layers: layerPaths }))) });
  }
  const layerBlob = (index: number): number => items.findIndex((item) => item.path === `blobs/sha256/${String(layers[index]?.digest).slice('sha256:'.length)}`);
  if (options.tamperLayer !== undefined) items[layerBlob(options.tamperLayer)]!.content = gzipSync(tarBytes([{ path: 'tampered', content: 'x' }]));
  if (options.dropLayer !== undefined) items.splice(layerBlob(options.dropLayer), 1);
  items.push(
    { path: 'index.json', content: JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [annotations, ...(options.alsoTagged ?? []).map(annotationsOf)].map((a) => ({ ...top, ...(a ? { annotations: a } : {}) })) }) },
    { path: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
  );
  return tarBytes(items);
}

/** One path of a merged tree, as the tests compare it. */
export interface TreeNode {
  type: 'file' | 'dir' | 'symlink';
  mode?: number;
  content?: string;
  target?: string;
}

/**
 * The merged tree an image's layers make, computed independently of the importer: layers in
 * order, `.wh.X` deleting X and below from what lower layers made, `.wh..wh..opq` emptying its
 * directory of lower layers' content. Hard links become files with their target's content.
 */
export function mergedTree(layers: TarItem[][]): Map<string, TreeNode> {
  const tree = new Map<string, TreeNode>();
  const removeUnder = (dir: string, self: boolean): void => {
    for (const key of [...tree.keys()]) {
      if (key.startsWith(`${dir}/`) || (self && key === dir)) tree.delete(key);
    }
  };
  for (const layer of layers) {
    const clean = (p: string): string => p.split('/').filter((part) => part !== '' && part !== '.').join('/');
    const items = layer.map((item) => ({ ...item, path: clean(item.path) }));
    for (const item of items) {
      const base = item.path.split('/').at(-1) ?? '';
      const parent = item.path.split('/').slice(0, -1).join('/');
      if (base === '.wh..wh..opq') removeUnder(parent, false);
      else if (base.startsWith('.wh.')) removeUnder(parent === '' ? base.slice(4) : `${parent}/${base.slice(4)}`, true);
    }
    for (const item of items) {
      const base = item.path.split('/').at(-1) ?? '';
      if (base.startsWith('.wh.')) continue;
      const type = item.type ?? 'file';
      if (type === 'dir') tree.set(item.path, { type: 'dir', mode: item.mode ?? 0o755 });
      else if (type === 'symlink') tree.set(item.path, { type: 'symlink', target: item.target ?? '' });
      else if (type === 'link') tree.set(item.path, { ...tree.get(clean(item.target ?? ''))! });
      else tree.set(item.path, { type: 'file', mode: item.mode ?? 0o644, content: String(item.content ?? '') });
    }
  }
  return tree;
}
