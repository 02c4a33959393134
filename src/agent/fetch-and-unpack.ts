/**
 * Gets a configuration's blobs and unpacks its layers into a new release directory. The first
 * layer (in order) whose blob has to be downloaded is unpacked from that download as it arrives,
 * through a ByteTap, rather than after it; the other missing blobs download meanwhile, into the
 * cache, and their layers are unpacked from the cached files as their turn comes. The usual change
 * (one layer moved to a new version) and a first deploy both start unpacking at once. The release
 * is only kept when the tap passed on the whole blob in one request that the download verified;
 * whenever the tap gives up, every layer is unpacked again from the verified cached files. Either
 * way the caller commits the release only after this resolves.
 */
import type { ResolvedLayer } from '../store/contract.ts';
import type { BlobCache } from './fetch/blob-cache.ts';
import { ByteTap } from './fetch/byte-tap.ts';
import { startWriteback } from './releases/index.ts';
import { removeTree, StreamNotSupported, unpackLayers, type UnpackLimits } from './unpack/index.ts';

/** What `fetchAndUnpack` needs. */
export interface FetchAndUnpackOptions {
  cache: BlobCache;
  layers: readonly ResolvedLayer[];
  /** The release directory to create (it must not exist). */
  target: string;
  limits: UnpackLimits;
  signal: AbortSignal;
  /** Called once every blob is downloaded and verified (for the phase reported). */
  onDownloaded: () => void;
}

/** Downloads what is missing and unpacks every layer in order into `target`. */
export async function fetchAndUnpack(options: FetchAndUnpackOptions): Promise<void> {
  const { cache, layers, target, limits, signal } = options;
  const blobs = [...new Map(layers.map((layer) => [layer.blob, { sha256: layer.blob, size: layer.size }])).values()];
  const cached = new Map<string, string>();
  const missing: string[] = [];
  for (const blob of blobs) {
    const file = await cache.verified(blob.sha256);
    if (file === undefined) missing.push(blob.sha256);
    else cached.set(blob.sha256, file);
  }
  const fromFiles = async (paths: ReadonlyMap<string, string>): Promise<void> => {
    await unpackLayers({ layers: layers.map((layer) => ({ name: layer.component, path: paths.get(layer.blob)! })), target, limits, signal });
  };
  // A blob two layers share cannot be streamed: its bytes would be needed twice.
  const first = layers.find((layer) => missing.includes(layer.blob));
  const streamed = first !== undefined && layers.filter((layer) => layer.blob === first.blob).length === 1 ? first.blob : undefined;
  if (streamed === undefined) {
    const paths = await cache.ensure(blobs, { signal });
    options.onDownloaded();
    return fromFiles(paths);
  }

  // Once the last byte is in the unpacker, the tree's writeback can start beside what is left.
  const tap = new ByteTap(blobs.find((blob) => blob.sha256 === streamed)!.size, () => startWriteback(target));
  const download = cache.ensure(blobs, { signal, taps: new Map([[streamed, tap]]) }).then((paths) => {
    options.onDownloaded();
    return paths;
  });
  // Layers after the streamed one whose blobs are still downloading wait for them. The download's
  // failure is handled below: a layer the unpack never reaches must not count as unhandled.
  const downloaded = (blob: string): Promise<string> => {
    const file = download.then((paths) => paths.get(blob)!);
    file.catch(() => undefined);
    return file;
  };
  const unpack = unpackLayers({
    layers: layers.map((layer) => {
      if (layer.blob === streamed) return { name: layer.component, stream: tap.stream };
      return { name: layer.component, path: cached.get(layer.blob) ?? downloaded(layer.blob) };
    }),
    target, limits, signal,
  }).then(() => undefined, (error: unknown) => {
    // Whether the tap had given up before the unpacker stopped decides between falling back and failing.
    const tapGaveUp = tap.abandoned || error instanceof StreamNotSupported;
    tap.abandon('the unpacker stopped');
    return { error, tapGaveUp };
  });
  const [fetched, unpacked] = await Promise.allSettled([download, unpack]);
  if (fetched.status === 'rejected') {
    if (unpacked.status === 'fulfilled' && unpacked.value === undefined) await removeTree(target);
    throw fetched.reason;
  }
  const outcome = unpacked.status === 'fulfilled' ? unpacked.value : { error: unpacked.reason, tapGaveUp: false };
  if (outcome === undefined && tap.verified) return;
  if (outcome !== undefined && !outcome.tapGaveUp) throw outcome.error;
  if (outcome === undefined) await removeTree(target);
  await fromFiles(fetched.value);
}
