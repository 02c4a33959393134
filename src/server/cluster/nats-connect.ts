/**
 * Opens a NATS connection for a server replica from the same options the NATS store takes
 * (servers, credentials file or user and password, TLS files). The connection reconnects forever:
 * a NATS outage must never end a replica, only pause it, and nats.js resumes every subscription
 * once it is back.
 */
import { readFile } from 'node:fs/promises';
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';

/** How to reach and authenticate to NATS; the file paths are read here, their contents never logged. */
export interface NatsConnectionConfig {
  /** `nats://host:port` URLs (one is enough; the client learns the others from the cluster). */
  servers: string[];
  /** A `.creds` file (JWT and seed). */
  creds?: string;
  user?: string;
  password?: string;
  /** PEM files: CA to verify the servers, and a client certificate and key for mutual TLS. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Shown by the NATS server's monitoring as the client's name. */
  name?: string;
}

/** Time allowed for the first connection. */
const CONNECT_TIMEOUT_MS = 10_000;

/** Connects; rejects if NATS cannot be reached within the timeout (later outages are retried forever). */
export async function connectNats(config: NatsConnectionConfig): Promise<NatsConnection> {
  const options: NodeConnectionOptions = {
    servers: config.servers,
    name: config.name ?? 'strata-server',
    timeout: CONNECT_TIMEOUT_MS,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    reconnectJitter: 500,
    // Detect a dead server in ~20 s instead of the default 4 minutes.
    pingInterval: 10_000,
    maxPingOut: 2,
  };
  if (config.creds) options.authenticator = credsAuthenticator(await readFile(config.creds));
  if (config.user !== undefined) {
    options.user = config.user;
    if (config.password !== undefined) options.pass = config.password;
  }
  if (config.tls) {
    options.tls = {
      ...(config.tls.ca ? { ca: await readFile(config.tls.ca, 'utf8') } : {}),
      ...(config.tls.cert ? { cert: await readFile(config.tls.cert, 'utf8') } : {}),
      ...(config.tls.key ? { key: await readFile(config.tls.key, 'utf8') } : {}),
    };
  }
  return connect(options);
}
