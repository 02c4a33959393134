/** Image import (see import-image.ts): the importer, its sinks' contract, limits and the registry sink. */
export { importImage } from './import-image.ts';
export { createRegistrySink, type RegistrySinkOptions } from './registry-sink.ts';
export { DEFAULT_IMAGE_LIMITS, type ImageLimits, type ImageSink, type ImportedLayer, type ImportOptions, type ImportResult } from './types.ts';
