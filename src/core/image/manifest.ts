/**
 * Finds the image in a spilled archive: Docker's legacy layout (`manifest.json` naming the config
 * and `<id>/layer.tar` files) or the OCI image layout (`index.json` → possibly nested indexes →
 * a manifest → config and layer blobs under `blobs/sha256/`, verified against their digests).
 * A multi-platform index is narrowed to one platform. `manifest.json` wins when both are present,
 * as in the archives Docker 25 and later write.
 */
import { z } from 'zod';
import type { SpilledArchive, SpilledFile } from './spill.ts';
import { imageTooLarge, invalidImage, type ImageLimits } from './types.ts';

/** The image to import: where its config and layers are, and the reference it was saved as. */
export interface ImagePlan {
  layout: 'docker' | 'oci';
  ref: string | undefined;
  config: { path: string; file: SpilledFile };
  layers: { path: string; file: SpilledFile; mediaType?: string }[];
}

const LegacyManifest = z.array(z.looseObject({
  Config: z.string().min(1),
  RepoTags: z.array(z.string()).nullish(),
  Layers: z.array(z.string().min(1)),
}));

const Platform = z.looseObject({ architecture: z.string(), os: z.string(), variant: z.string().optional() });
const Descriptor = z.looseObject({
  mediaType: z.string().optional(),
  digest: z.string(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: Platform.optional(),
});
const OciIndex = z.looseObject({ manifests: z.array(Descriptor) });
const OciManifest = z.looseObject({ config: Descriptor, layers: z.array(Descriptor) });

type DescriptorValue = z.infer<typeof Descriptor>;
type PlatformValue = z.infer<typeof Platform>;

/** Media types of an index (OCI) or a manifest list (Docker). */
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
/** Nested indexes followed before the archive counts as malformed. */
const MAX_INDEX_DEPTH = 4;

/** Parses `value` with `schema`, or refuses the document naming the first problem. */
function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  throw invalidImage(`${what} is malformed${where}: ${issue?.message ?? 'unexpected shape'}`);
}

/** Docker's short form of a reference: without `docker.io/` and `library/`. */
export function shortRef(ref: string): string {
  return ref.replace(/^(docker\.io|index\.docker\.io|registry-1\.docker\.io)\//, '').replace(/^library\//, '');
}

/** `os/arch[/variant]` of a platform. */
export function platformText(platform: PlatformValue): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** The platform this process runs on, in OCI's words. */
export function hostPlatform(): string {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return `linux/${arch[process.arch] ?? process.arch}`;
}

/** True when `platform` is what `wanted` (`os/arch[/variant]`) asks for. */
export function matches(platform: PlatformValue, wanted: string): boolean {
  const [os, arch, variant] = wanted.split('/');
  return platform.os === os && platform.architecture === arch && (variant === undefined || platform.variant === variant);
}

/** The archive file a `sha256:` digest names, verified against the digest. */
function blob(archive: SpilledArchive, digest: string, what: string): { path: string; file: SpilledFile } {
  const match = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!match) throw invalidImage(`${what} has digest ${JSON.stringify(digest)}: only sha256 digests are supported`);
  const blobPath = `blobs/sha256/${match[1]}`;
  const file = archive.get(blobPath);
  if (!file) throw invalidImage(`${what} ${digest} is not in the archive (no ${blobPath})`, { path: blobPath });
  if (file.sha256 !== match[1]) throw invalidImage(`${what} ${blobPath} does not match its digest (its sha256 is ${file.sha256})`, { path: blobPath });
  return { path: blobPath, file };
}

/** The image of a legacy `docker save` archive. */
async function legacyPlan(archive: SpilledArchive, limits: ImageLimits): Promise<ImagePlan> {
  const listed = parse(LegacyManifest, await archive.readJson('manifest.json', limits, 'manifest'), 'manifest.json');
  // `docker save a:1 a:latest` lists one image per tag: the same config is the same image.
  const images = listed.filter((image, index) => listed.findIndex((other) => other.Config === image.Config) === index);
  if (images.length !== 1) {
    throw invalidImage(images.length === 0 ? 'manifest.json lists no image' : `manifest.json lists ${images.length} images; import one image at a time (docker save IMAGE)`);
  }
  const image = images[0]!;
  const config = archive.get(image.Config);
  if (!config) throw invalidImage(`manifest.json names config ${JSON.stringify(image.Config)}, which is not in the archive`, { path: image.Config });
  const layers = image.Layers.map((layerPath, index) => {
    const file = archive.get(layerPath);
    if (!file) throw invalidImage(`manifest.json names layer ${index} ${JSON.stringify(layerPath)}, which is not in the archive`, { path: layerPath, layer: index });
    return { path: layerPath, file };
  });
  const tag = image.RepoTags?.[0];
  return { layout: 'docker', ref: tag ? shortRef(tag) : undefined, config: { path: image.Config, file: config }, layers };
}

/** A manifest an index offers, with the reference and platform it was listed under. */
interface Candidate {
  descriptor: DescriptorValue;
  ref: string | undefined;
}

/** The manifests reachable from an index, nested indexes expanded, attestations left out. */
async function candidates(archive: SpilledArchive, limits: ImageLimits, descriptors: DescriptorValue[], ref: string | undefined, depth: number): Promise<Candidate[]> {
  if (depth > MAX_INDEX_DEPTH) throw invalidImage(`index.json nests indexes more than ${MAX_INDEX_DEPTH} deep`);
  const found: Candidate[] = [];
  for (const descriptor of descriptors) {
    const annotations = descriptor.annotations ?? {};
    if (annotations['vnd.docker.reference.type'] === 'attestation-manifest' || descriptor.platform?.os === 'unknown') continue;
    const name = annotations['io.containerd.image.name'] ?? annotations['org.opencontainers.image.ref.name'];
    const listedRef = name ? shortRef(name) : ref;
    const isIndex = descriptor.mediaType ? INDEX_TYPES.has(descriptor.mediaType) : undefined;
    if (isIndex === false) {
      found.push({ descriptor, ref: listedRef });
      continue;
    }
    // Without a media type, the document itself says what it is.
    const { path: blobPath } = blob(archive, descriptor.digest, 'manifest');
    const document = await archive.readJson(blobPath, limits, 'manifest');
    if (isIndex === true || (typeof document === 'object' && document !== null && 'manifests' in document)) {
      const nested = parse(OciIndex, document, `index ${blobPath}`);
      found.push(...(await candidates(archive, limits, nested.manifests, listedRef, depth + 1)));
    } else {
      found.push({ descriptor, ref: listedRef });
    }
  }
  return found;
}

/** Narrows the candidates to one: `platform` if given, else linux/amd64, else the host's platform. */
function choose(all: Candidate[], platform: string | undefined): Candidate {
  // One image saved under several tags is listed once per tag, with the same digest.
  const found = all.filter((candidate, index) => all.findIndex((other) => other.descriptor.digest === candidate.descriptor.digest) === index);
  if (found.length === 0) throw invalidImage('index.json lists no image manifest');
  const offered = found.map((c) => (c.descriptor.platform ? platformText(c.descriptor.platform) : 'unspecified platform'));
  const list = [...new Set(offered)].join(', ');
  if (found.length === 1 && (platform === undefined || !found[0]!.descriptor.platform || matches(found[0]!.descriptor.platform, platform))) return found[0]!;
  for (const wanted of platform === undefined ? ['linux/amd64', hostPlatform()] : [platform]) {
    const picked = found.filter((c) => c.descriptor.platform !== undefined && matches(c.descriptor.platform, wanted));
    if (picked.length === 1) return picked[0]!;
    if (picked.length > 1) throw invalidImage(`the archive holds ${picked.length} images for ${wanted}; import one image at a time`);
  }
  if (platform !== undefined) throw invalidImage(`the image has no ${platform} manifest; it has: ${list}`);
  throw invalidImage(`the image has no linux/amd64 or ${hostPlatform()} manifest; pick one of ${list} with --platform`);
}

/** The image of an OCI image layout. */
async function ociPlan(archive: SpilledArchive, limits: ImageLimits, platform: string | undefined): Promise<ImagePlan> {
  const index = parse(OciIndex, await archive.readJson('index.json', limits, 'index'), 'index.json');
  const chosen = choose(await candidates(archive, limits, index.manifests, undefined, 1), platform);
  const { path: manifestPath } = blob(archive, chosen.descriptor.digest, 'manifest');
  const manifest = parse(OciManifest, await archive.readJson(manifestPath, limits, 'manifest'), `manifest ${manifestPath}`);
  const config = blob(archive, manifest.config.digest, 'image config');
  const layers = manifest.layers.map((layer, index) => {
    if (layer.mediaType?.includes('zstd')) throw invalidImage(`layer ${index} is zstd-compressed (${layer.mediaType}); save the image with gzip or uncompressed layers`);
    return { ...blob(archive, layer.digest, `layer ${index}`), ...(layer.mediaType ? { mediaType: layer.mediaType } : {}) };
  });
  return { layout: 'oci', ref: chosen.ref, config, layers };
}

/** Refuses an image whose config names another platform than the one asked for (a legacy archive has no index to pick from). */
export function assertConfigPlatform(config: unknown, wanted: string | undefined): void {
  const parsed = Platform.safeParse(config);
  if (wanted === undefined || !parsed.success || matches(parsed.data, wanted)) return;
  throw invalidImage(`the image is for ${platformText(parsed.data)}, not ${wanted}`);
}

/** Finds the image in the archive and checks that everything it names is there. */
export async function planImage(archive: SpilledArchive, limits: ImageLimits, platform: string | undefined): Promise<ImagePlan> {
  let plan: ImagePlan;
  if (archive.has('manifest.json')) plan = await legacyPlan(archive, limits);
  else if (archive.has('index.json')) plan = await ociPlan(archive, limits, platform);
  else throw invalidImage('not an image archive: it has neither manifest.json (docker save) nor index.json (OCI image layout)');
  if (plan.layers.length === 0) throw invalidImage('the image has no layers');
  if (plan.layers.length > limits.maxLayers) {
    throw imageTooLarge(`the image has ${plan.layers.length} layers, over the limit of ${limits.maxLayers}`, 'maxLayers', plan.layers.length);
  }
  return plan;
}
