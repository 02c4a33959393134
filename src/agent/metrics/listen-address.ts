/**
 * Where the agent's local metrics endpoint listens (`--metrics-listen`): `127.0.0.1:PORT`,
 * `[::1]:PORT`, `HOST:PORT` or `unix:/path/to.sock`. Only a loopback address or a Unix socket may
 * be used without a token; anything else must be given `--metrics-token-file`.
 */
import net from 'node:net';
import path from 'node:path';

/** A parsed listen address. */
export type MetricsListen = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Parses `--metrics-listen`; throws an Error fit for a user. */
export function parseMetricsListen(text: string): MetricsListen {
  const trimmed = text.trim();
  if (trimmed.startsWith('unix:')) {
    const file = trimmed.slice('unix:'.length);
    if (!path.isAbsolute(file)) throw new Error(`invalid address ${JSON.stringify(text)}: a Unix socket path must be absolute, like unix:/run/strata/metrics.sock`);
    return { kind: 'unix', path: file };
  }
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(trimmed);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new Error(`invalid address ${JSON.stringify(text)}: write it like 127.0.0.1:9464, [::1]:9464 or unix:/run/strata/metrics.sock`);
  return { kind: 'tcp', host: (match[1] ?? match[2])!, port };
}

/** True for a Unix socket, `localhost`, 127.0.0.0/8 and ::1. */
export function isLocalOnly(address: MetricsListen): boolean {
  if (address.kind === 'unix') return true;
  const host = address.host.toLowerCase();
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}

/** How the address reads in logs and URLs. */
export function formatMetricsListen(address: MetricsListen): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
