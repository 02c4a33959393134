/** `strata addver`: add a version of a component from an archive file or an uploaded hash. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { uploadBlob } from '../api.ts';
import { printJson, println, UsageError, UserError, type CliContext } from '../context.ts';
import { progressStream } from '../progress.ts';
import { examples, remoteCommand, segment, withApi } from './shared.ts';

/** Registers `addver`. */
export function registerAddver(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('addver'))
    .description('add a version of a component: upload an archive (tar.gz, tar or zip) or name an uploaded blob by hash')
    .requiredOption('--name <component>', 'component name')
    .requiredOption('--version <version>', 'version name (immutable once added)')
    .option('--file <archive>', 'archive to upload')
    .option('--hash <sha256>', 'sha256 of a blob already uploaded (deploy-tools style)')
    .action(async (options: { name: string; version: string; file?: string; hash?: string }) => {
      if (Boolean(options.file) === Boolean(options.hash)) throw new UsageError('addver needs exactly one of --file or --hash');
      await withApi(command, context, async (api, globals) => {
        let blob = options.hash;
        if (options.file) {
          let size: number;
          try {
            size = (await stat(options.file)).size;
          } catch (error) {
            throw new UserError(`cannot read ${options.file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
          }
          const body = progressStream(createReadStream(options.file), context, { total: size, label: 'upload' });
          blob = (await uploadBlob(api, body, size)).sha256;
        }
        const version = await api.call<{ component: string; version: string; blob: string; size: number }>('POST', `/v1/components/${segment(options.name)}/versions`, { json: { version: options.version, blob } });
        if (globals.json) printJson(context.stdout, version);
        else println(context.stdout, `added ${version.component}:${version.version} (sha256 ${version.blob}, ${version.size} bytes)`);
      });
    });
  examples(command, ['strata addver --name code --version v1 --file code.tar.gz', 'strata addver -name code -version v1 -hash 6743ac39ff80…']);
}
