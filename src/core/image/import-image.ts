/**
 * Image import, deploy-from-docker's job done completely: reads a `docker save` archive (legacy
 * or OCI layout) from a stream, applies whiteouts and opaque directories, re-gzips each layer
 * deterministically as component `<name>.l<N>`, version = the sha256 of that tar.gz, and points
 * the configuration `<name>` at all layers in order, keeping the image config as
 * `settings.image` (and, when asked, the service spec it implies as `settings.service`).
 *
 * Nothing is stored until the whole image has been read and checked; then blobs are uploaded,
 * versions added (existing identical ones reused, so importing again changes nothing) and the
 * configuration written last, compare-and-set, so a failed import never leaves one half-made.
 * Storage goes through an `ImageSink`: the CLI's over the HTTP API, the console's over the registry.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import { StrataError } from '../errors.ts';
import { assertName } from '../registry.ts';
import { formatLayerRef, type LayerRef } from '../../protocol/names.ts';
import { assertImageName, imageSettings, nameFromRef, searchPath, serviceFromImage } from './image-config.ts';
import { HiddenPaths, rewriteLayer, scanLayer, type LayerScan, type LayerTotals, type RewrittenLayer } from './layers.ts';
import { assertConfigPlatform, planImage } from './manifest.ts';
import { readJsonFile, spillArchive } from './spill.ts';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits, type ImageSink, type ImportedLayer, type ImportOptions, type ImportResult } from './types.ts';

/** Layers a configuration may have (the API's limit), image and extra layers together. */
const MAX_CONFIGURATION_LAYERS = 256;

/** Checks the operator's options before any byte is read. */
function checkOptions(options: ImportOptions): void {
  if (options.platform !== undefined && !/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(options.platform)) {
    throw new StrataError('BAD_REQUEST', `platform ${JSON.stringify(options.platform)} must be written os/arch[/variant], e.g. linux/arm64/v8`);
  }
  if (options.name !== undefined) assertName('configuration', options.name);
}

/** Imports the image read from `source` through `sink`; see the module comment. */
export async function importImage(source: Readable, options: ImportOptions, sink: ImageSink): Promise<ImportResult> {
  checkOptions(options);
  const limits: ImageLimits = { ...DEFAULT_IMAGE_LIMITS, ...options.limits };
  const note = options.onNote ?? (() => undefined);
  const extra = options.extraLayers ?? [];
  // Extra layers are checked before the image is read, so a typo costs nothing.
  if (extra.length > 0) await sink.checkLayers(extra);
  const work = await mkdtemp(path.join(options.tempDir ?? os.tmpdir(), 'strata-image-'));
  try {
    note('reading the image archive');
    const spillDir = path.join(work, 'archive');
    await mkdir(spillDir);
    const archive = await spillArchive(source, spillDir, limits);
    const plan = await planImage(archive, limits, options.platform);
    const name = options.name ?? (plan.ref ? nameFromRef(plan.ref) : undefined);
    if (name === undefined) throw new StrataError('INVALID_IMAGE', 'the image has no tag to name its configuration after; give one with --name', { details: { reason: 'no tag' } });
    assertImageName(name, plan.layers.length);
    if (plan.layers.length + extra.length > MAX_CONFIGURATION_LAYERS) {
      throw new StrataError('IMAGE_TOO_LARGE', `a configuration holds at most ${MAX_CONFIGURATION_LAYERS} layers; the image has ${plan.layers.length} and ${extra.length} more were asked for`, { details: { limit: 'layers', value: plan.layers.length + extra.length } });
    }
    const configDocument = await readJsonFile(plan.config.file, plan.config.path, limits, 'image config');
    assertConfigPlatform(configDocument, options.platform);
    const image = imageSettings(configDocument, plan.ref);

    note(`checking ${plan.layers.length} ${plan.layers.length === 1 ? 'layer' : 'layers'}`);
    const totals: LayerTotals = { entries: 0, bytes: 0 };
    const scans: LayerScan[] = [];
    for (const [index, layer] of plan.layers.entries()) scans.push(await scanLayer(layer.file, index, limits, totals));

    // Top down: each layer is rewritten without what the layers above it delete.
    const searchDirs = new Set(searchPath(image));
    const programs = new Set<string>();
    const hidden = new HiddenPaths();
    const rewritten: RewrittenLayer[] = [];
    for (let index = plan.layers.length - 1; index >= 0; index--) {
      rewritten[index] = await rewriteLayer(plan.layers[index]!.file, index, scans[index]!, hidden, path.join(work, `layer-${index}.tar.gz`), (kept) => {
        const dir = path.posix.dirname(kept);
        if (searchDirs.has(dir === '.' ? '' : dir)) programs.add(kept);
      });
      hidden.add(scans[index]!);
    }
    // The original archive is no longer needed: free its disk space before uploading.
    await rm(spillDir, { recursive: true, force: true });

    const settingsFromImage: Record<string, unknown> = { image };
    if (options.service) settingsFromImage['service'] = serviceFromImage(image, (relative) => programs.has(relative));

    const layers = await storeLayers(sink, name, rewritten, note);
    const refs: LayerRef[] = [...layers.map((l) => ({ component: l.component, version: l.version })), ...extra];
    const written = await writeConfiguration(sink, name, refs, settingsFromImage);
    note(written.changed ? `configuration ${name} revision ${written.revision}` : `configuration ${name} unchanged`);
    return { configuration: name, ref: plan.ref, layout: plan.layout, layers, ...written };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Uploads the rewritten layers that are not stored yet, then adds their versions. */
async function storeLayers(sink: ImageSink, name: string, rewritten: RewrittenLayer[], note: (line: string) => void): Promise<ImportedLayer[]> {
  const layers: ImportedLayer[] = [];
  for (const [index, layer] of rewritten.entries()) {
    const component = `${name}.l${index}`;
    const version = layer.sha256;
    const existing = await sink.findVersion(component, version);
    if (existing !== undefined && existing !== layer.sha256) {
      throw new StrataError('VERSION_EXISTS', `version ${JSON.stringify(version)} of component ${JSON.stringify(component)} already exists with another blob (${existing})`, { details: { component, version } });
    }
    if (existing === undefined) {
      const blob = await sink.putBlob(layer.file, layer.size, `layer ${index}`);
      if (blob !== layer.sha256) throw new StrataError('HASH_MISMATCH', `layer ${index} was stored as ${blob}, not ${layer.sha256}`);
      note(`layer ${index}: uploaded ${layer.size} bytes`);
    }
    layers.push({ component, version, blob: layer.sha256, size: layer.size, entries: layer.entries, added: existing === undefined });
  }
  for (const layer of layers) {
    if (!layer.added) continue;
    try {
      await sink.addVersion(layer.component, layer.version, layer.blob);
    } catch (error) {
      // Another import of the same image may have added it meanwhile: the same blob is no conflict.
      if ((await sink.findVersion(layer.component, layer.version)) !== layer.blob) throw error;
      layer.added = false;
    }
  }
  return layers;
}

/** Attempts at the configuration's compare-and-set before giving up to a busy writer. */
const CAS_ATTEMPTS = 5;

/** True for the errors of a compare-and-set that another writer won (from either sink). */
function lostRace(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'REVISION_CONFLICT' || code === 'CONFIGURATION_EXISTS';
}

/** Creates or updates the configuration, retrying when another writer commits in between. */
async function writeConfiguration(sink: ImageSink, name: string, layers: LayerRef[], fromImage: Record<string, unknown>): Promise<{ revision: number; id: string; changed: boolean; settings: Record<string, unknown> }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeOnce(sink, name, layers, fromImage);
    } catch (error) {
      if (!lostRace(error) || attempt >= CAS_ATTEMPTS) throw error;
    }
  }
}

/** One read-compare-write of the configuration, keeping settings the import does not own; no write when nothing changes. */
async function writeOnce(sink: ImageSink, name: string, layers: LayerRef[], fromImage: Record<string, unknown>): Promise<{ revision: number; id: string; changed: boolean; settings: Record<string, unknown> }> {
  const current = await sink.getConfiguration(name);
  const settings = { ...current?.settings, ...fromImage };
  const sameLayers = current !== undefined && current.layers.map(formatLayerRef).join(' ') === layers.map(formatLayerRef).join(' ');
  if (current && sameLayers && isDeepStrictEqual(current.settings ?? {}, settings)) {
    return { revision: current.revision, id: current.id, changed: false, settings };
  }
  const written = await sink.putConfiguration({ name, layers, settings, expectedRevision: current?.revision ?? 0 });
  return { revision: written.revision, id: written.id, changed: true, settings };
}
