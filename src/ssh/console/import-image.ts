/**
 * The console's `import-image`: reads `docker save` output from the exec channel's input
 * (`docker save app:v7 | ssh -p 2022 registry import-image -name app`) and imports it with the
 * same importer as `strata import-image` (`src/core/image/`), storing through the registry as the
 * caller, so every version and the configuration are audited like any console write. Limits may
 * be lowered by flags, never raised above the server's.
 */
import { importImage } from '../../core/image/import-image.ts';
import { importReportLines } from '../../core/image/report.ts';
import { createRegistrySink } from '../../core/image/registry-sink.ts';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from '../../core/image/types.ts';
import { formatBytes, parseSize } from '../../protocol/size.ts';
import { ConsoleUsageError, layersOf, type FlagValues } from './args.ts';
import type { ConsoleCommand } from './commands.ts';

/** A limit from a flag, at most the server's default for it. */
function limit(values: FlagValues, flag: string, key: keyof ImageLimits, parse: (text: string) => number, show: (n: number) => string): Partial<ImageLimits> {
  const text = values[flag] as string | undefined;
  if (text === undefined) return {};
  let value: number;
  try {
    value = parse(text);
  } catch (error) {
    throw new ConsoleUsageError(`-${flag}: ${(error as Error).message}`);
  }
  if (!Number.isInteger(value) || value < 1) throw new ConsoleUsageError(`-${flag} must be a positive whole number, not ${JSON.stringify(text)}`);
  if (value > DEFAULT_IMAGE_LIMITS[key]) throw new ConsoleUsageError(`-${flag} may not exceed the server's limit of ${show(DEFAULT_IMAGE_LIMITS[key])}`);
  return { [key]: value };
}

/** The `import-image` console command. */
export const importImageCommand: ConsoleCommand = {
  flags: [
    { name: 'name', kind: 'string', usage: "configuration name and layer component prefix (default: the image's tag with : / @ made .)" },
    { name: 'layer', kind: 'list', usage: 'an existing version to put on top of the image layers, component:version; can be set multiple times' },
    { name: 'platform', kind: 'string', usage: 'platform to pick from a multi-platform image (os/arch[/variant])' },
    { name: 'service', kind: 'bool', usage: "also set settings.service from the image's ENTRYPOINT/CMD, ENV, WORKDIR and USER" },
    { name: 'max-bytes', kind: 'string', usage: `largest image archive accepted (at most ${formatBytes(DEFAULT_IMAGE_LIMITS.maxArchiveBytes)})` },
    { name: 'max-layers', kind: 'string', usage: `most image layers accepted (at most ${DEFAULT_IMAGE_LIMITS.maxLayers})` },
    { name: 'max-entries', kind: 'string', usage: `most entries across all layers (at most ${DEFAULT_IMAGE_LIMITS.maxEntries})` },
    { name: 'max-unpacked', kind: 'string', usage: `largest total of file bytes across all layers (at most ${formatBytes(DEFAULT_IMAGE_LIMITS.maxUnpackedBytes)})` },
  ],
  async run(values, context, io) {
    if (!io.stdin) throw new ConsoleUsageError("import-image reads the image from the session's input: docker save IMAGE | ssh -p PORT HOST import-image");
    const extraLayers = layersOf(values);
    const limits: Partial<ImageLimits> = {
      ...limit(values, 'max-bytes', 'maxArchiveBytes', parseSize, formatBytes),
      ...limit(values, 'max-layers', 'maxLayers', Number, String),
      ...limit(values, 'max-entries', 'maxEntries', Number, String),
      ...limit(values, 'max-unpacked', 'maxUnpackedBytes', parseSize, formatBytes),
    };
    const result = await importImage(io.stdin, {
      ...(typeof values['name'] === 'string' ? { name: values['name'] } : {}),
      ...(typeof values['platform'] === 'string' ? { platform: values['platform'] } : {}),
      extraLayers, limits, service: values['service'] === true,
    }, createRegistrySink(context.registry, context.actor, { maxBlobBytes: context.maxUploadBytes }));
    for (const line of importReportLines(result)) io.stdout.write(`${line}\n`);
  },
};
