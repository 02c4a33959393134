/** `strata token create|list|revoke` and `strata join-token create`: API and agent credentials. */
import type { Command } from 'commander';
import { parseDuration } from '../../protocol/duration.ts';
import { MAX_JOIN_TOKEN_TTL_MS } from '../../protocol/api.ts';
import { printJson, println, UsageError, type CliContext } from '../context.ts';
import { table } from '../table.ts';
import type { TokenView } from './views.ts';
import { examples, remoteCommand, segment, withApi } from './shared.ts';

const ROLES = ['admin', 'deployer', 'viewer'];

/** Registers the `token` command group. */
export function registerToken(program: Command, context: CliContext): void {
  const group = program.command('token').description('manage API tokens (admin only)');

  const create = remoteCommand(group.command('create'))
    .description('create an API token; its text is printed once and never stored')
    .requiredOption('--role <role>', 'admin, deployer (push and deploy) or viewer (read only)')
    .option('--name <name>', 'a label for the token', 'operator')
    .action(async (options: { role: string; name: string }) => {
      if (!ROLES.includes(options.role)) throw new UsageError(`unknown role ${JSON.stringify(options.role)}: use admin, deployer or viewer`);
      await withApi(create, context, async (api, globals) => {
        const token = await api.call<TokenView>('POST', '/v1/tokens', { json: { role: options.role, name: options.name } });
        if (globals.json) return printJson(context.stdout, token);
        println(context.stdout, token.token);
        context.stderr.write(`token ${token.id} (${token.role}, ${token.name}) created; it is shown only now\n`);
      });
    });
  examples(create, ['strata token create --role deployer --name ci', 'export STRATA_TOKEN=$(strata token create --role viewer --name dashboard)']);

  const list = remoteCommand(group.command('list'))
    .description('list tokens (never their secrets)')
    .action(async () => {
      await withApi(list, context, async (api, globals) => {
        const { tokens } = await api.call<{ tokens: TokenView[] }>('GET', '/v1/tokens');
        if (globals.json) return printJson(context.stdout, { tokens });
        const rows = tokens.map((t) => [t.id, t.kind, t.role, t.name, t.createdAt.slice(0, 19) + 'Z', t.revokedAt ? `revoked ${t.revokedAt.slice(0, 19)}Z` : t.expiresAt ? `expires ${t.expiresAt.slice(0, 19)}Z` : 'active']);
        context.stdout.write(table(['ID', 'KIND', 'ROLE', 'NAME', 'CREATED', 'STATE'], rows));
      });
    });
  examples(list, ['strata token list']);

  const revoke = remoteCommand(group.command('revoke'))
    .description('revoke a token; requests with it are refused at once')
    .argument('<id>', 'the token id (from token list)')
    .action(async (id: string) => {
      if (!/^[0-9a-f]{12}$/.test(id)) throw new UsageError(`invalid token id ${JSON.stringify(id)}: it is 12 hex digits, as token list shows`);
      await withApi(revoke, context, async (api, globals) => {
        const token = await api.call<TokenView>('DELETE', `/v1/tokens/${segment(id)}`);
        if (globals.json) printJson(context.stdout, token);
        else println(context.stdout, `revoked token ${token.id} (${token.name})`);
      });
    });
  examples(revoke, ['strata token revoke 3f9a0c2b71de']);
}

/** Registers `join-token create`. */
export function registerJoinToken(program: Command, context: CliContext): void {
  const group = program.command('join-token').description('manage agent join tokens (admin only)');
  const create = remoteCommand(group.command('create'))
    .description("create a join token for enrolling agents; it carries the CA fingerprint so agents can verify the server")
    .option('--name <name>', 'a label for the token', 'agents')
    .option('--ttl <duration>', 'how long it stays valid, e.g. 24h (default: until revoked)')
    .action(async (options: { name: string; ttl?: string }) => {
      let ttlMs: number | undefined;
      try {
        ttlMs = options.ttl === undefined ? undefined : parseDuration(options.ttl);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      if (ttlMs !== undefined && ttlMs > MAX_JOIN_TOKEN_TTL_MS) throw new UsageError('--ttl may be at most 3650d (ten years)');
      await withApi(create, context, async (api, globals) => {
        const token = await api.call<TokenView>('POST', '/v1/join-tokens', { json: { name: options.name, ...(ttlMs ? { ttlMs } : {}) } });
        if (globals.json) return printJson(context.stdout, token);
        println(context.stdout, token.token);
      });
    });
  examples(create, ['strata join-token create --name rack-7 --ttl 24h']);
}
