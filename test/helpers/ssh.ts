/**
 * The deploy-tools SSH front under test: key pairs made by ssh-keygen, a real `strata server`
 * with `--ssh-listen`, and OpenSSH's own `ssh` and `sftp` clients run against it.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer, type CliResult, type TestServer } from './strata-server.ts';

/** A key pair in a temp dir: the private key file and the public key line. */
export interface KeyPair {
  file: string;
  publicLine: string;
}

/** Runs a program with argv (no shell) and collects its output; kills it after `timeoutMs`. */
export async function run(program: string, args: string[], options: { input?: string | Buffer; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(options.cwd ? { cwd: options.cwd } : {}), env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.input);
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code: code ?? -1, stdout, stderr };
}

/** Makes a key pair with ssh-keygen (`type` ed25519, ecdsa or rsa) with `comment`; reuses one already there. */
export async function makeKey(dir: string, name: string, type = 'ed25519', comment = `${name}@test`): Promise<KeyPair> {
  const file = path.join(dir, name);
  const exists = await access(file).then(() => true, () => false);
  if (exists) return { file, publicLine: (await readFile(`${file}.pub`, 'utf8')).trim() };
  const made = await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', comment, '-f', file]);
  if (made.code !== 0) throw new Error(`ssh-keygen failed: ${made.stderr}`);
  return { file, publicLine: (await readFile(`${file}.pub`, 'utf8')).trim() };
}

/** A server with the SSH front on, and the keys its files admit. */
export interface SshTestServer {
  server: TestServer;
  port: number;
  fingerprint: string;
  operator: KeyPair;
  agent: KeyPair;
  /** Runs `ssh` as `user` (default `op`) with `key` (default the operator key) and `args` as the remote command. */
  ssh(args: string[], options?: { user?: string; key?: KeyPair; input?: string | Buffer; tty?: boolean }): Promise<CliResult>;
  /** Runs `sftp -b -` with `batch` commands on stdin, in `cwd`. */
  sftp(batch: string, options: { cwd: string; user?: string; key?: KeyPair }): Promise<CliResult>;
  /** Runs `sftp` fetching `remote` (`configs/x.json`) as deploy-agent into `localFile`. */
  fetch(remote: string, localFile: string, options?: { user?: string; key?: KeyPair }): Promise<CliResult>;
}

/** OpenSSH options for a test: no known_hosts, no prompts, no agent, only the given key. */
export function clientOptions(key: KeyPair): string[] {
  return ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-i', key.file];
}

/** Starts `strata server` with the SSH front on a free loopback port, admitting one operator and one agent key. */
export async function startSshServer(root: string, extraArgs: string[] = []): Promise<SshTestServer> {
  await mkdir(root, { recursive: true });
  const operator = await makeKey(root, 'operator');
  const agent = await makeKey(root, 'agent', 'ecdsa');
  await writeFile(path.join(root, 'operator.keys'), `# operators\n${operator.publicLine}\n`);
  await writeFile(path.join(root, 'service.keys'), `${agent.publicLine}\n`);
  const server = await startServer(path.join(root, 'data'), [
    '--insecure-http', '--ssh-listen', '127.0.0.1:0',
    '--ssh-operator-keys', path.join(root, 'operator.keys'), '--ssh-agent-keys', path.join(root, 'service.keys'), ...extraArgs,
  ]);
  const port = Number(/^SSH front \(deploy-tools\) listening on 127\.0\.0\.1:(\d+)$/m.exec(server.output())![1]);
  const fingerprint = /^host key fingerprint: (SHA256:\S+)$/m.exec(server.output())![1]!;
  return {
    server, port, fingerprint, operator, agent,
    ssh: (args, options = {}) => run('ssh', [...clientOptions(options.key ?? operator), ...(options.tty ? ['-tt'] : ['-T']), '-p', String(port), `${options.user ?? 'op'}@127.0.0.1`, ...args], { ...(options.input === undefined ? {} : { input: options.input }) }),
    sftp: (batch, options) => run('sftp', [...clientOptions(options.key ?? operator), '-b', '-', '-P', String(port), `${options.user ?? 'op'}@127.0.0.1`], { input: batch, cwd: options.cwd }),
    fetch: (remote, localFile, options = {}) => run('sftp', [...clientOptions(options.key ?? agent), '-P', String(port), `${options.user ?? 'deploy-agent'}@127.0.0.1:${remote}`, localFile]),
  };
}

/** A one-file tar.gz made by the real tar, with `size` random (incompressible) bytes, and its sha256. */
export async function randomArchive(dir: string, name: string, size: number): Promise<{ file: string; hash: string }> {
  const source = path.join(dir, `${name}-src`);
  await mkdir(source, { recursive: true });
  await writeFile(path.join(source, 'data.bin'), randomBytes(size));
  const file = path.join(dir, `${name}.tar.gz`);
  const made = await run('tar', ['czf', file, '-C', source, 'data.bin']);
  if (made.code !== 0) throw new Error(`tar failed: ${made.stderr}`);
  return { file, hash: createHash('sha256').update(await readFile(file)).digest('hex') };
}
