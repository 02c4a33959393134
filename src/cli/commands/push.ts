/** `strata push`: archive a directory deterministically, upload it and add it as a version, in one step. */
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { uploadBlob } from '../api.ts';
import { printJson, println, UsageError, UserError, type CliContext } from '../context.ts';
import { startProgress } from '../progress.ts';
import { packDirectory, treeSize } from '../../core/archive/pack.ts';
import { formatBytes } from '../../protocol/size.ts';
import { examples, remoteCommand, segment, withApi } from './shared.ts';

/** Registers `push`. */
export function registerPush(program: Command, context: CliContext): void {
  const command = remoteCommand(program.command('push'))
    .description('archive a directory (sorted entries, fixed times and owners), upload it and add it as a version')
    .argument('<dir>', 'directory to push')
    .requiredOption('--name <component>', 'component name')
    .requiredOption('--version <version>', 'version name (immutable once added)')
    .option('--keep-mtimes', 'keep file modification times instead of a fixed time')
    .option('--keep-owners', 'keep numeric owners instead of root')
    .option('--level <n>', 'gzip level 1 (fastest) to 9 (smallest)', '6')
    .action(async (dir: string, options: { name: string; version: string; keepMtimes?: boolean; keepOwners?: boolean; level: string }) => {
      const level = Number(options.level);
      if (!Number.isInteger(level) || level < 1 || level > 9) throw new UsageError(`--level must be 1 to 9, not ${JSON.stringify(options.level)}`);
      try {
        if (!(await stat(dir)).isDirectory()) throw new UserError(`${dir} is not a directory`);
      } catch (error) {
        if (error instanceof UserError) throw error;
        throw new UserError(`cannot read ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      await withApi(command, context, async (api, globals) => {
        const progress = context.stderr.isTTY ? startProgress(context, { total: await treeSize(dir), label: 'push' }) : undefined;
        const archive = packDirectory(dir, {
          level, ...(options.keepMtimes ? { keepMtimes: true } : {}), ...(options.keepOwners ? { keepOwners: true } : {}),
          ...(progress ? { onProgress: (bytes: number) => progress.advance(bytes) } : {}),
        });
        const upload = await uploadBlob(api, archive).finally(() => progress?.finish());
        const version = await api.call<{ component: string; version: string; blob: string; size: number }>('POST', `/v1/components/${segment(options.name)}/versions`, { json: { version: options.version, blob: upload.sha256 } });
        if (globals.json) printJson(context.stdout, { ...version, archive: upload.archive });
        else println(context.stdout, `pushed ${version.component}:${version.version}: ${upload.archive.entries} ${upload.archive.entries === 1 ? 'entry' : 'entries'}, ${formatBytes(upload.archive.unpackedBytes)} → ${formatBytes(version.size)} (sha256 ${version.blob})`);
      });
    });
  examples(command, ['strata push ./build --name web --version v42', 'strata push ./etc --name config --version 2026-11-22 --level 9']);
}
