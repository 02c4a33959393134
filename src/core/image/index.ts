/** Image import (see import-image.ts): the importer, its sinks' contract, limits, the registry sink and the summary lines. */
export { importImage } from './import-image.ts';
export { importReportLines } from './report.ts';
export { createRegistrySink, type RegistrySinkOptions } from './registry-sink.ts';
export { DEFAULT_IMAGE_LIMITS, type ImageLimits, type ImageSink, type ImportedLayer, type ImportOptions, type ImportResult } from './types.ts';
