/**
 * Image import (see import-image.ts): the importer, its sinks' contract, limits, the registry sink
 * and the summary lines. An in-server caller, such as the SSH console reading `docker save` from
 * an exec channel, runs:
 *
 *     const result = await importImage(channelInput, { name, service, tempDir },
 *       createRegistrySink(registry, actor, { maxBlobBytes }));
 *     for (const line of importReportLines(result)) write(`${line}\n`);
 */
export { importImage } from './import-image.ts';
export { importReportLines } from './report.ts';
export { createRegistrySink, type RegistrySinkOptions } from './registry-sink.ts';
export { DEFAULT_IMAGE_LIMITS, type ImageLimits, type ImageSink, type ImportedLayer, type ImportOptions, type ImportResult } from './types.ts';
