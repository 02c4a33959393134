/**
 * Shapes of an image import: its limits, the options an operator gives, the sink that stores what
 * the importer produces (over the HTTP API for the CLI, over the registry for the SSH console),
 * the result, and the errors every step raises.
 */
import { StrataError } from '../errors.ts';
import type { LayerRef } from '../../protocol/names.ts';

/** Every limit an import enforces; each breach is IMAGE_TOO_LARGE (or UNSAFE_ARCHIVE_ENTRY for one layer's entries). */
export interface ImageLimits {
  /** Bytes of the image archive itself, all files counted (spilled to a temp directory). */
  maxArchiveBytes: number;
  /** Entries of the image archive itself (manifests, configs, layer files, directories). */
  maxArchiveEntries: number;
  /** Layers of the image. */
  maxLayers: number;
  /** Entries across all layers. */
  maxEntries: number;
  /** Declared bytes of regular files across all layers. */
  maxUnpackedBytes: number;
  /** Bytes of one JSON document (manifest.json, index.json, a manifest, the image config). */
  maxManifestBytes: number;
}

/** Defaults: room for large real images, small enough that a runaway input is stopped. */
export const DEFAULT_IMAGE_LIMITS: ImageLimits = {
  maxArchiveBytes: 16 * 1024 ** 3,
  maxArchiveEntries: 100_000,
  maxLayers: 128,
  maxEntries: 2_000_000,
  maxUnpackedBytes: 32 * 1024 ** 3,
  maxManifestBytes: 4 * 1024 ** 2,
};

/** What the operator asks for. */
export interface ImportOptions {
  /** Configuration name (and prefix of the layer components); default: the image's tag with `:` `/` `@` made `.`. */
  name?: string;
  /** Existing versions put on top of the image's layers, in this order (e.g. site configuration). */
  extraLayers?: LayerRef[];
  /** `os/arch[/variant]` to pick from a multi-platform image; default linux/amd64, then the host's. */
  platform?: string;
  /** Also set `settings.service` from the image config. */
  service?: boolean;
  limits?: Partial<ImageLimits>;
  /** Parent of the temporary working directory (default: the OS temp directory). */
  tempDir?: string;
  /** Progress notes, one line each ("reading image", "layer 2: 14 MiB"). */
  onNote?: (line: string) => void;
}

/** A configuration as the importer needs to see it before replacing it. */
export interface ExistingConfiguration {
  revision: number;
  id: string;
  layers: LayerRef[];
  settings?: Record<string, unknown>;
}

/**
 * Where an import stores its results. The importer calls it only after the whole image has been
 * read and checked, in this order: `checkLayers`, `findVersion`/`putBlob` per layer, `addVersion`
 * per new layer, then `getConfiguration` and `putConfiguration` once.
 */
export interface ImageSink {
  /** Throws (VERSION_NOT_FOUND, COMPONENT_NOT_FOUND) unless every layer exists. */
  checkLayers(layers: LayerRef[]): Promise<void>;
  /** The blob a version names, or undefined when there is no such version. */
  findVersion(component: string, version: string): Promise<string | undefined>;
  /** Stores a local tar.gz file as a blob; returns its sha256. */
  putBlob(file: string, size: number, label: string): Promise<string>;
  /** Adds a version naming a stored blob. */
  addVersion(component: string, version: string, blob: string): Promise<void>;
  /** The configuration's current revision, or undefined when it does not exist. */
  getConfiguration(name: string): Promise<ExistingConfiguration | undefined>;
  /** Creates the configuration (`expectedRevision` 0) or replaces that revision (compare-and-set). */
  putConfiguration(input: { name: string; layers: LayerRef[]; settings: Record<string, unknown>; expectedRevision: number }): Promise<{ revision: number; id: string }>;
}

/** One imported layer. */
export interface ImportedLayer {
  component: string;
  version: string;
  /** sha256 of the re-gzipped layer (equal to `version`). */
  blob: string;
  size: number;
  entries: number;
  /** False when that version already existed with the same blob and was reused. */
  added: boolean;
}

/** What an import did. */
export interface ImportResult {
  configuration: string;
  ref: string | undefined;
  layout: 'docker' | 'oci';
  layers: ImportedLayer[];
  /** The revision written, or the current one when nothing changed. */
  revision: number;
  id: string;
  changed: boolean;
  settings: Record<string, unknown>;
}

/** The error for an archive that is not a well-formed image. */
export function invalidImage(message: string, details?: Record<string, unknown>): StrataError {
  return new StrataError('INVALID_IMAGE', message, { details: { reason: message, ...details } });
}

/** The error for an image over one of the import's limits. */
export function imageTooLarge(message: string, limit: keyof ImageLimits, value: number): StrataError {
  return new StrataError('IMAGE_TOO_LARGE', message, { details: { limit, value } });
}
