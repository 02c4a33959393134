/**
 * `strata import-image`: reads `docker save` output (legacy or OCI layout) on stdin and imports it
 * with the core importer, storing layers, versions and the configuration through the HTTP API.
 */
import { createReadStream, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import { uploadBlob, type Api } from '../api.ts';
import { printJson, println, UsageError, UserError, type CliContext } from '../context.ts';
import { progressStream } from '../progress.ts';
import { importImage } from '../../core/image/import-image.ts';
import { importReportLines } from '../../core/image/report.ts';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits, type ImageSink } from '../../core/image/types.ts';
import { formatBytes, parseSize } from '../../protocol/size.ts';
import type { ConfigurationView, VersionView } from './views.ts';
import { collect, examples, parseLayers, remoteCommand, segment, withApi } from './shared.ts';

/** The import's options as commander hands them over. */
interface ImportImageOptions {
  name?: string;
  layer?: string[];
  platform?: string;
  service?: boolean;
  maxBytes?: string;
  maxLayers?: string;
  maxEntries?: string;
  maxUnpacked?: string;
}

/** The versions of a component, none when it does not exist. */
async function versionsOf(api: Api, component: string): Promise<VersionView[]> {
  try {
    return (await api.call<{ versions: VersionView[] }>('GET', `/v1/components/${segment(component)}`)).versions;
  } catch (error) {
    if (error instanceof UserError && error.code === 'COMPONENT_NOT_FOUND') return [];
    throw error;
  }
}

/** An ImageSink over the HTTP API, with an upload progress bar per layer on a terminal. */
export function httpImageSink(api: Api, context: CliContext): ImageSink {
  return {
    async checkLayers(layers) {
      for (const layer of layers) {
        if (!(await versionsOf(api, layer.component)).some((v) => v.version === layer.version)) {
          throw new UserError(`layer ${layer.component}:${layer.version} does not exist: add that version first`, { code: 'VERSION_NOT_FOUND' });
        }
      }
    },
    async findVersion(component, version) {
      return (await versionsOf(api, component)).find((v) => v.version === version)?.blob;
    },
    async putBlob(file, size, label) {
      return (await uploadBlob(api, progressStream(createReadStream(file), context, { total: size, label }), size)).sha256;
    },
    async addVersion(component, version, blob) {
      await api.call('POST', `/v1/components/${segment(component)}/versions`, { json: { version, blob } });
    },
    async getConfiguration(name) {
      try {
        const found = await api.call<ConfigurationView>('GET', `/v1/configurations/${segment(name)}`);
        return { revision: found.revision, id: found.id, layers: found.layers.map((l) => ({ component: l.component, version: l.version })), ...(found.settings ? { settings: found.settings } : {}) };
      } catch (error) {
        if (error instanceof UserError && error.code === 'CONFIGURATION_NOT_FOUND') return undefined;
        throw error;
      }
    },
    async putConfiguration(input) {
      const written = await api.call<ConfigurationView>('PUT', `/v1/configurations/${segment(input.name)}`, { json: { layers: input.layers, settings: input.settings, expectedRevision: input.expectedRevision } });
      return { revision: written.revision, id: written.id };
    },
  };
}

/** A positive whole number from a flag. */
function count(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`${flag} must be a positive whole number, not ${JSON.stringify(text)}`);
  return value;
}

/** A size from a flag, like 512MiB. */
function size(flag: string, text: string): number {
  try {
    return parseSize(text);
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}

/** The limits the flags override. */
function limitsFrom(options: ImportImageOptions): Partial<ImageLimits> {
  return {
    ...(options.maxBytes ? { maxArchiveBytes: size('--max-bytes', options.maxBytes) } : {}),
    ...(options.maxLayers ? { maxLayers: count('--max-layers', options.maxLayers) } : {}),
    ...(options.maxEntries ? { maxEntries: count('--max-entries', options.maxEntries) } : {}),
    ...(options.maxUnpacked ? { maxUnpackedBytes: size('--max-unpacked', options.maxUnpacked) } : {}),
  };
}

/** Registers `import-image`. */
export function registerImportImage(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('import-image'))
    .description('import `docker save` output from stdin (legacy or OCI layout): whiteouts applied, each layer a version of <name>.l<N>, the configuration <name> pointing at them in order, the image config kept in settings.image')
    .option('--name <configuration>', "configuration name and layer component prefix (default: the image's tag with : / @ made .)")
    .option('--layer <component:version>', 'an existing version to put on top of the image layers (repeat; in order), e.g. site configuration', collect)
    .option('--platform <os/arch>', 'platform to pick from a multi-platform image (default linux/amd64, else the host\'s)')
    .option('--service', "also set settings.service from the image's ENTRYPOINT/CMD, ENV, WORKDIR and USER")
    .option('--max-bytes <size>', `largest image archive accepted (default ${formatBytes(DEFAULT_IMAGE_LIMITS.maxArchiveBytes)})`)
    .option('--max-layers <n>', `most image layers accepted (default ${DEFAULT_IMAGE_LIMITS.maxLayers})`)
    .option('--max-entries <n>', `most entries across all layers (default ${DEFAULT_IMAGE_LIMITS.maxEntries})`)
    .option('--max-unpacked <size>', `largest total of file bytes across all layers (default ${formatBytes(DEFAULT_IMAGE_LIMITS.maxUnpackedBytes)})`)
    .action(async (options: ImportImageOptions) => {
      const stdin = context.stdin ?? process.stdin;
      if (stdin.isTTY) throw new UsageError('import-image reads the image from stdin: docker save IMAGE | strata import-image');
      const extraLayers = parseLayers(options.layer ?? []);
      const limits = limitsFrom(options);
      await withApi(command, context, async (api, globals) => {
        const input = stdin instanceof Readable ? stdin : Readable.from(stdin as AsyncIterable<Buffer>);
        // The spilled image may be gigabytes: an interrupted import removes it before exiting.
        const work = await mkdtemp(path.join(os.tmpdir(), 'strata-import-'));
        const interrupted = (signal: NodeJS.Signals): void => {
          rmSync(work, { recursive: true, force: true });
          process.exit(signal === 'SIGINT' ? 130 : 143);
        };
        process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
        try {
          const result = await importImage(input, {
            ...(options.name ? { name: options.name } : {}),
            ...(options.platform ? { platform: options.platform } : {}),
            extraLayers, limits, service: Boolean(options.service), tempDir: work,
            ...(context.stderr.isTTY && !globals.json ? { onNote: (line: string) => println(context.stderr, line) } : {}),
          }, httpImageSink(api, context));
          if (globals.json) printJson(context.stdout, result);
          else for (const line of importReportLines(result)) println(context.stdout, line);
        } finally {
          process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
          await rm(work, { recursive: true, force: true });
        }
      });
    });
  examples(command, [
    'strata import-image < nginx-1.27.tar',
    'docker save nginx:1.27 | strata import-image',
    'docker save registry.example.com/team/app:v7 | strata import-image --name app --layer app-config:prod --service',
    'strata import-image --platform linux/arm64 < image-oci.tar',
  ]);
}
