/**
 * How Strata authenticates to NATS, as `strata server` and `strata migrate` both take it: a
 * `.creds` file, or a user with a password read from a file (kept out of the command line and
 * the environment), and TLS files.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { NatsStoreOptions } from '../store/nats/connection.ts';

/** The flags, as parsed. */
export interface NatsAuthFlags {
  natsCreds?: string | undefined;
  natsUser?: string | undefined;
  natsPasswordFile?: string | undefined;
  natsCa?: string | undefined;
  natsCert?: string | undefined;
  natsKey?: string | undefined;
}

/** Adds the NATS authentication and TLS flags to a command. */
export function addNatsAuthOptions(command: Command): Command {
  return command
    .option('--nats-creds <file>', 'NATS credentials file (.creds with JWT and nkey seed, as nsc writes it)')
    .option('--nats-user <user>', 'NATS user name (with --nats-password-file)')
    .option('--nats-password-file <file>', 'file holding the NATS password (kept out of the command line and the environment)')
    .option('--nats-ca <file>', 'CA certificate to verify the NATS servers (TLS)')
    .option('--nats-cert <file>', 'client certificate for NATS mutual TLS (with --nats-key)')
    .option('--nats-key <file>', 'private key of --nats-cert');
}

/** The connection options the flags give, the password read from its file. */
export async function natsAuth(flags: NatsAuthFlags): Promise<Pick<NatsStoreOptions, 'creds' | 'user' | 'password' | 'tls'>> {
  const password = flags.natsPasswordFile === undefined ? undefined : (await readFile(flags.natsPasswordFile, 'utf8')).replace(/\r?\n$/, '');
  const tls = flags.natsCa || flags.natsCert ? { ...(flags.natsCa ? { ca: flags.natsCa } : {}), ...(flags.natsCert ? { cert: flags.natsCert } : {}), ...(flags.natsKey ? { key: flags.natsKey } : {}) } : undefined;
  return {
    ...(flags.natsCreds ? { creds: flags.natsCreds } : {}),
    ...(flags.natsUser ? { user: flags.natsUser } : {}),
    ...(password === undefined ? {} : { password }),
    ...(tls ? { tls } : {}),
  };
}
