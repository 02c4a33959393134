/** `strata migrate`: copy the embedded store into NATS JetStream. */
import { access, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { parseNatsServers } from '../../server/config.ts';
import { addNatsAuthOptions, natsAuth, type NatsAuthFlags } from '../../server/nats-auth.ts';
import { println, UsageError, UserError, type CliContext } from '../context.ts';
import { examples } from './shared.ts';

/** Options of `migrate` as commander hands them over. */
interface MigrateOptions extends NatsAuthFlags {
  from: string;
  to: string;
  resume?: boolean;
  natsReplicas: string;
  natsPrefix: string;
}

/** The SQLite store directory `--from sqlite:DIR` names: DIR itself, or the server's `DIR/store`. */
async function sqliteDir(from: string): Promise<string> {
  if (!from.startsWith('sqlite:')) throw new UsageError('--from must be sqlite:DIR (the server\'s --data directory, or its store/ directory)');
  const dir = path.resolve(from.slice('sqlite:'.length));
  for (const candidate of [dir, path.join(dir, 'store')]) {
    if (await access(path.join(candidate, 'strata.db')).then(() => true, () => false)) return candidate;
  }
  throw new UserError(`no Strata store in ${dir}: expected ${path.join(dir, 'store', 'strata.db')} (or strata.db in it)`);
}

/** Registers `migrate`. */
export function registerMigrate(program: Command, context: CliContext): void {
  const command = addNatsAuthOptions(program.command('migrate')
    .description('copy everything from the embedded SQLite store into NATS JetStream (stop the server first)')
    .requiredOption('--from <sqlite:DIR>', "the source: sqlite: and the server's --data directory")
    .requiredOption('--to <urls>', 'the target NATS servers, comma-separated, e.g. nats://10.0.0.1:4222,nats://10.0.0.2:4222')
    .option('--resume', 'continue an interrupted migration into a target that already holds part of the copy'))
    .option('--nats-replicas <n>', 'replicas of every stream and bucket created: 1, or 3 for a three-node cluster', '1')
    .option('--nats-prefix <prefix>', 'prefix of stream, bucket and subject names (as the server will use)', 'strata')
    .action(async (options: MigrateOptions) => {
      let servers: string[];
      try {
        servers = parseNatsServers(options.to);
      } catch (error) {
        throw new UsageError(`--to: ${(error as Error).message}`);
      }
      const replicas = Number(options.natsReplicas);
      if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new UsageError('--nats-replicas must be a whole number from 1 to 5');
      if ((options.natsUser === undefined) !== (options.natsPasswordFile === undefined)) throw new UsageError('--nats-user and --nats-password-file go together');
      const dir = await sqliteDir(options.from);
      const auth = await natsAuth(options);
      const { createStore } = await import('../../store/create-store.ts');
      const { migrateStore } = await import('../../store/migrate.ts');
      const spoolDir = await mkdtemp(path.join(os.tmpdir(), 'strata-migrate-'));
      const source = await createStore({ kind: 'sqlite', dir });
      try {
        const target = await createStore({
          kind: 'nats', servers, replicas, prefix: options.natsPrefix, spoolDir, ...auth,
        });
        try {
          println(context.stdout, `Migrating ${dir} → ${servers.join(',')} (prefix ${options.natsPrefix}, ${replicas} replica${replicas === 1 ? '' : 's'})`);
          const counts = await migrateStore(source, target, { resume: options.resume ?? false, progress: (line) => println(context.stdout, `  ${line}`) });
          println(context.stdout, 'Verified, source = target:');
          for (const [kind, n] of Object.entries(counts.target)) println(context.stdout, `  ${kind.padEnd(15)} ${n}`);
          println(context.stdout, `Done. Start the server with: strata server --store nats --nats ${servers.join(',')}${replicas > 1 ? ` --nats-replicas ${replicas}` : ''}${options.natsPrefix === 'strata' ? '' : ` --nats-prefix ${options.natsPrefix}`} --data <the same --data>`);
        } finally {
          await target.close();
        }
      } catch (error) {
        if (error instanceof Error && 'code' in error && error.code !== 'BAD_REQUEST' && !(error instanceof UserError)) {
          throw new UserError(`${error.message}\nThe source is untouched: fix the cause and run the same command again with --resume.`);
        }
        throw error;
      } finally {
        await source.close();
        await rm(spoolDir, { recursive: true, force: true });
      }
    });
  examples(command, [
    'strata migrate --from sqlite:/var/lib/strata --to nats://127.0.0.1:4222',
    'strata migrate --from sqlite:/var/lib/strata --to nats://n1:4222,nats://n2:4222,nats://n3:4222 --nats-replicas 3 --nats-creds strata.creds',
  ]);
}
