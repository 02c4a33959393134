/**
 * The deploy-tools SSH front: an ssh2 server identifying as `SSH-2.0-generic` with an ECDSA
 * P-256 host key, admitting operators (any user name but `deploy-agent`, keys from the operator
 * authorized_keys file) and agents (`deploy-agent`, keys from the agent file) by public key only.
 * It bounds the handshake time, each connection's lifetime, the connections open at once and
 * the sessions per connection; sessions themselves are `session.ts`.
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { AuthContext, Connection } from 'ssh2';
import type { Registry } from '../core/registry.ts';
import type { UploadLimits } from '../core/upload.ts';
import type { Logger } from '../lib/logger.ts';
import { findKey, loadAuthorizedKeys, type AuthorizedKey } from './authorized-keys.ts';
import { ensureHostKey } from './host-key.ts';
import { handleSession, type SshIdentity } from './session.ts';

/** The SSH user name agents log in as. */
export const AGENT_USER = 'deploy-agent';
/** Session channels one connection may have open at once. */
const MAX_SESSIONS_PER_CONNECTION = 10;

/** The SSH front's settings. */
export interface SshFrontConfig {
  host: string;
  port: number;
  operatorKeysFile: string;
  agentKeysFile: string;
  /** Time allowed from accepting the TCP connection to authentication. */
  handshakeTimeoutMs: number;
  /** A connection's lifetime; it is closed when it runs out (deploy-tools' `-deadline`). */
  deadlineMs: number;
  /** Connections open at once; more are closed as they arrive. */
  maxConnections: number;
}

/** The keys the front admits, loaded before anything else starts so a bad file stops the server early. */
export interface SshKeys {
  operators: AuthorizedKey[];
  agents: AuthorizedKey[];
}

/** What the front serves from. */
export interface SshFrontDeps {
  registry: Registry;
  limits: UploadLimits;
  logger: Logger;
  dataDir: string;
}

/** A running SSH front. */
export interface SshFront {
  host: string;
  port: number;
  /** The host key's fingerprint, `SHA256:…`. */
  fingerprint: string;
  /** Stops accepting, closes every connection. */
  close(): Promise<void>;
}

/** Loads both authorized_keys files; throws BAD_REQUEST with a line fit for a user when either has no key. */
export async function loadSshKeys(config: Pick<SshFrontConfig, 'operatorKeysFile' | 'agentKeysFile'>): Promise<SshKeys> {
  return {
    operators: await loadAuthorizedKeys(config.operatorKeysFile, 'operator keys (--ssh-operator-keys)'),
    agents: await loadAuthorizedKeys(config.agentKeysFile, 'agent keys (--ssh-agent-keys)'),
  };
}

/** Checks a public key authentication attempt; returns who it is once the signature verifies. */
function authenticate(ctx: AuthContext, keys: SshKeys): SshIdentity | 'probe-ok' | undefined {
  if (ctx.method !== 'publickey') return undefined;
  const role = ctx.username === AGENT_USER ? 'agent' : 'operator';
  const match = findKey(role === 'agent' ? keys.agents : keys.operators, ctx.key.data);
  if (!match) return undefined;
  // Without a signature the client only asks whether the key would do.
  if (!ctx.signature || !ctx.blob) return 'probe-ok';
  if (match.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return undefined;
  const actor = `ssh:${match.fingerprint}${match.comment ? `(${match.comment})` : ''}`;
  return { role, username: ctx.username, actor };
}

/** Starts the SSH front; resolves once it listens and logs the host key fingerprint. */
export async function startSshFront(config: SshFrontConfig, keys: SshKeys, deps: SshFrontDeps): Promise<SshFront> {
  const { logger } = deps;
  const hostKey = await ensureHostKey(deps.dataDir);
  const sockets = new Set<Socket>();
  const byPeer = new Map<string, { socket: Socket; handshake: NodeJS.Timeout }>();

  const ssh = new ssh2.Server({ hostKeys: [hostKey.pem], ident: 'generic' }, (client: Connection, info) => {
    const peer = `${info.ip}|${info.port}`;
    let identity: SshIdentity | undefined;
    let sessions = 0;
    client.on('error', (error: Error) => logger.debug({ err: error, peer }, 'ssh connection error'));
    client.on('authentication', (ctx) => {
      const result = authenticate(ctx, keys);
      if (result === 'probe-ok') return ctx.accept();
      if (!result) {
        if (ctx.method === 'publickey' && ctx.signature) logger.info({ peer, user: ctx.username }, 'ssh authentication refused');
        return ctx.reject(['publickey']);
      }
      identity = result;
      ctx.accept();
    });
    client.on('ready', () => {
      const tracked = byPeer.get(peer);
      if (tracked) {
        clearTimeout(tracked.handshake);
        const lifetime = setTimeout(() => tracked.socket.destroy(), config.deadlineMs);
        lifetime.unref();
        tracked.socket.once('close', () => clearTimeout(lifetime));
      }
      logger.info({ peer, user: identity!.username, role: identity!.role, actor: identity!.actor }, 'ssh connection authenticated');
      client.on('session', (accept, reject) => {
        if (sessions >= MAX_SESSIONS_PER_CONNECTION) return reject();
        sessions += 1;
        const session = accept();
        session.once('close', () => (sessions -= 1));
        handleSession(session, identity!, deps);
      });
    });
  });

  const net: NetServer = createServer((socket) => {
    if (sockets.size >= config.maxConnections) {
      logger.warn({ limit: config.maxConnections }, 'ssh connection refused: too many open');
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.setKeepAlive(true, 180_000);
    socket.on('error', () => undefined);
    const peer = `${socket.remoteAddress}|${socket.remotePort}`;
    const handshake = setTimeout(() => socket.destroy(), config.handshakeTimeoutMs);
    handshake.unref();
    byPeer.set(peer, { socket, handshake });
    socket.once('close', () => {
      clearTimeout(handshake);
      sockets.delete(socket);
      byPeer.delete(peer);
    });
    ssh.injectSocket(socket);
  });

  await new Promise<void>((resolve, reject) => {
    net.once('error', reject);
    net.listen({ host: config.host, port: config.port }, () => {
      net.off('error', reject);
      resolve();
    });
  });
  const address = net.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ host: config.host, port, fingerprint: hostKey.fingerprint }, `host key fingerprint: ${hostKey.fingerprint}`);
  return {
    host: config.host, port, fingerprint: hostKey.fingerprint,
    async close() {
      const closed = new Promise<void>((resolve) => net.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
