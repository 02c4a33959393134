/**
 * A load generator, not an agent: one process that holds many agent identities and opens one
 * WebSocket channel per identity, speaking the real channel protocol (signed upgrade,
 * versioned envelopes), and answers like an agent would without doing any of an agent's work:
 * `ping` gets `pong`, an `order` gets its one `order-result` at once (ping: OK with the agent's
 * name; exec: exit status 0 with empty output; anything else: UNSUPPORTED). A closed channel is
 * reopened with full-jitter backoff, as the real agent does (src/agent/channel.ts), with a lower cap.
 *
 * Run as a child process with an IPC channel (bench/fanout.ts does), so its CPU is not the
 * server's. The parent sends `{ cmd: 'grow', count }` to enroll and connect identities 0…count-1
 * (enrollment is idempotent: already enrolled ones are skipped), `{ cmd: 'reset-counters' }`
 * before something it wants failures counted for, and `{ cmd: 'stop' }` to close every channel
 * and exit. It reports `{ type: 'stats', … }` every 200 ms and `{ type: 'grown', … }` once a grow
 * has finished enrolling (connections continue in the background; watch `connected`).
 *
 * Environment: FANOUT_SERVER (https://127.0.0.1:port, or a comma-separated list of server replicas
 * sharing one store and CA: identity i enrolls and connects to server i mod n), FANOUT_CA (CA file), FANOUT_JOIN_TOKEN,
 * FANOUT_PREFIX (agent name prefix), FANOUT_RATE (new connections per second while growing),
 * FANOUT_BACKOFF_BASE_MS, FANOUT_BACKOFF_CAP_MS, FANOUT_ENROLL_PARALLEL.
 */
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { createSecureContext, type SecureContext } from 'node:tls';
import WebSocket from 'ws';
import { CHANNEL_VERSION, agentSigningInput } from '../../src/protocol/agent.ts';
import { STRATA_VERSION } from '../../src/lib/version.ts';

/** Messages from the parent. */
export type LoadCommand = { cmd: 'grow'; count: number } | { cmd: 'reset-counters' } | { cmd: 'stop' };

/** Connection counters since the last reset. */
export interface LoadCounters {
  /** Connection attempts started. */
  attempts: number;
  /** Channels that reached the server's first `desired` message. */
  opened: number;
  /** Attempts that failed before opening, by reason (ECONNREFUSED, ECONNRESET, HTTP 503, timeout…). */
  failed: Record<string, number>;
  /** Open channels that closed, by close code. */
  closed: Record<string, number>;
  /** Refusals that a real agent would not retry (HTTP 401/403 on the upgrade). */
  refusedForGood: number;
  /** Orders answered, pings answered. */
  orders: number;
  pongs: number;
}

/** What the generator reports every 200 ms. */
export interface LoadStats {
  type: 'stats';
  at: number;
  /** Identities this process holds (enrolled). */
  identities: number;
  /** Channels open now, counted from the server's first `desired` on each. */
  connected: number;
  /** Attempts in progress (TCP/TLS/upgrade not finished). */
  connecting: number;
  counters: LoadCounters;
  rss: number;
  cpuSeconds: number;
}

/** Sent once a grow has enrolled every identity (connecting goes on). */
export interface LoadGrown {
  type: 'grown';
  count: number;
  enrolled: number;
  enrollSeconds: number;
  keygenSeconds: number;
}

interface Identity {
  name: string;
  /** The channel URL of the replica this identity talks to. */
  wsUrl: string;
  key: KeyObject;
  socket?: WebSocket;
  /** True once the server's first `desired` arrived on the current socket. */
  live: boolean;
  /** Consecutive failed attempts (0 after a channel that opened). */
  attempt: number;
  timer?: NodeJS.Timeout;
}

const PATH = '/v1/agent/channel';
const servers = required('FANOUT_SERVER').split(',').filter(Boolean);
const caPem = readFileSync(required('FANOUT_CA'), 'utf8');
const joinToken = required('FANOUT_JOIN_TOKEN');
const prefix = process.env['FANOUT_PREFIX'] ?? 'load';
const rate = Number(process.env['FANOUT_RATE'] ?? 500);
const backoffBase = Number(process.env['FANOUT_BACKOFF_BASE_MS'] ?? 1000);
const backoffCap = Number(process.env['FANOUT_BACKOFF_CAP_MS'] ?? 5000);
const enrollParallel = Number(process.env['FANOUT_ENROLL_PARALLEL'] ?? 16);
const serverOf = (index: number): string => servers[index % servers.length]!;
// One TLS context for every connection: passing `ca` per connection would parse the CA 10,000 times.
const secureContext: SecureContext = createSecureContext({ ca: caPem });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: enrollParallel, ca: caPem });

const identities: Identity[] = [];
let connected = 0;
let connecting = 0;
let stopping = false;
let counters = freshCounters();

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function freshCounters(): LoadCounters {
  return { attempts: 0, opened: 0, failed: {}, closed: {}, refusedForGood: 0, orders: 0, pongs: 0 };
}

function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

function send(message: object): void {
  if (process.connected) process.send!(message);
}

/** POST /v1/agents/enroll for one identity; resolves with the HTTP status. */
function enrollOne(server: string, name: string, publicKey: string): Promise<number> {
  const body = Buffer.from(JSON.stringify({ name, publicKey, labels: { bench: 'fanout' }, tracks: [] }));
  return new Promise((resolve, reject) => {
    const request = https.request(new URL('/v1/agents/enroll', server), {
      method: 'POST', agent: httpsAgent, timeout: 30_000,
      headers: { authorization: `Bearer ${joinToken}`, 'content-type': 'application/json', 'content-length': String(body.length), 'user-agent': 'strata-bench-load/1' },
    }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.on('end', () => (response.statusCode === 200 || response.statusCode === 201 ? resolve(response.statusCode) : reject(new Error(`enroll ${name}: HTTP ${response.statusCode}: ${text.slice(0, 300)}`))));
    });
    request.on('timeout', () => request.destroy(new Error(`enroll ${name}: timed out`)));
    request.on('error', reject);
    request.end(body);
  });
}

/** Generates keys for identities `from`…`to-1` and enrolls them, `enrollParallel` at a time. */
async function enrollRange(from: number, to: number): Promise<{ keygenSeconds: number; enrollSeconds: number }> {
  const keygenStart = performance.now();
  const fresh: { identity: Identity; server: string; publicKey: string }[] = [];
  for (let index = from; index < to; index += 1) {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const server = serverOf(index);
    fresh.push({ identity: { name: `${prefix}-${String(index).padStart(5, '0')}`, wsUrl: `${server.replace(/^http/, 'ws')}${PATH}`, key: privateKey, live: false, attempt: 0 }, server, publicKey: publicKey.export({ format: 'pem', type: 'spki' }).toString() });
  }
  const keygenSeconds = (performance.now() - keygenStart) / 1000;
  const enrollStart = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < fresh.length && !stopping) {
      const item = fresh[next++]!;
      // Bounded retries: a busy server may reset a connection; a refusal is fatal.
      for (let attempt = 1; ; attempt += 1) {
        try {
          await enrollOne(item.server, item.identity.name, item.publicKey);
          break;
        } catch (error) {
          if (attempt >= 3 || /HTTP 4/.test((error as Error).message)) throw error;
          await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(enrollParallel, fresh.length) }, worker));
  for (const item of fresh) identities.push(item.identity);
  return { keygenSeconds, enrollSeconds: (performance.now() - enrollStart) / 1000 };
}

/** The signed Authorization header of the upgrade, as the real agent makes it. */
function authorization(identity: Identity): string {
  const now = Date.now();
  const signature = sign(null, Buffer.from(agentSigningInput(identity.name, now, 'GET', PATH)), identity.key).toString('base64url');
  return `StrataAgent ${identity.name}.${now}.${signature}`;
}

/** The one answer to an order, at once. */
function answer(order: { id: string; args: { verb: string; name?: string } }, name: string): object {
  const verb = order.args.verb;
  const result = verb === 'ping'
    ? { ok: true, code: 'OK', message: 'pong', content: { agentVersion: STRATA_VERSION, name }, durationMs: 0 }
    : verb === 'exec'
      ? { ok: true, code: 0, message: `exec ${order.args.name ?? ''} succeeded`, content: { stdout: '', stderr: '' }, durationMs: 0 }
      : { ok: false, code: 'UNSUPPORTED', message: `the load generator does not do ${verb}`, durationMs: 0 };
  return { v: CHANNEL_VERSION, id: randomUUID(), type: 'order-result', orderId: order.id, result };
}

/** Opens one identity's channel; on close, schedules the next attempt with full jitter. */
function connect(identity: Identity): void {
  if (stopping) return;
  identity.timer = undefined;
  counters.attempts += 1;
  connecting += 1;
  let settled = false;
  let wasLive = false;
  let failure: string | undefined;
  const socket = new WebSocket(identity.wsUrl, {
    secureContext, headers: { authorization: authorization(identity) },
    handshakeTimeout: 15_000, maxPayload: 16 * 1024 * 1024, perMessageDeflate: false,
  } as WebSocket.ClientOptions);
  identity.socket = socket;
  const doneConnecting = (): void => {
    if (!settled) {
      settled = true;
      connecting -= 1;
    }
  };
  socket.on('unexpected-response', (_request, response) => {
    failure = `HTTP ${response.statusCode}`;
    if (response.statusCode === 401 || response.statusCode === 403) counters.refusedForGood += 1;
    response.resume();
    socket.terminate();
  });
  socket.on('message', (data) => {
    let message: { type?: string; id?: string; order?: { id: string; args: { verb: string; name?: string } } };
    try {
      message = JSON.parse(String(data)) as typeof message;
    } catch {
      return;
    }
    if (message.type === 'order' && message.order) {
      counters.orders += 1;
      socket.send(JSON.stringify(answer(message.order, identity.name)));
    } else if (message.type === 'ping') {
      counters.pongs += 1;
      socket.send(JSON.stringify({ v: CHANNEL_VERSION, id: message.id, type: 'pong', at: new Date().toISOString() }));
    } else if (message.type === 'desired' && !identity.live) {
      identity.live = true;
      wasLive = true;
      identity.attempt = 0;
      connected += 1;
      counters.opened += 1;
      doneConnecting();
    }
  });
  socket.on('error', (error: NodeJS.ErrnoException) => {
    failure ??= error.code ?? (/handshake/i.test(error.message) ? 'handshake timeout' : error.message.slice(0, 60));
  });
  socket.on('close', (code) => {
    doneConnecting();
    if (identity.live) {
      identity.live = false;
      connected -= 1;
    }
    if (wasLive) bump(counters.closed, String(code));
    else {
      bump(counters.failed, failure ?? `closed ${code} before desired`);
      identity.attempt += 1;
    }
    if (identity.socket === socket) identity.socket = undefined;
    if (stopping || (failure === 'HTTP 401' || failure === 'HTTP 403')) return;
    const ceiling = Math.min(backoffCap, backoffBase * 2 ** Math.min(identity.attempt, 20));
    identity.timer = setTimeout(() => connect(identity), Math.floor(Math.random() * ceiling));
  });
}

/** Enrolls up to `count` identities, reports, then opens the new ones' channels at `rate` per second. */
async function grow(count: number): Promise<void> {
  const from = identities.length;
  const { keygenSeconds, enrollSeconds } = from < count ? await enrollRange(from, count) : { keygenSeconds: 0, enrollSeconds: 0 };
  send({ type: 'grown', count: identities.length, enrolled: count - from, enrollSeconds, keygenSeconds } satisfies LoadGrown);
  const perTick = Math.max(1, Math.round(rate / 20));
  for (let index = from; index < count && !stopping; index += perTick) {
    for (const identity of identities.slice(index, Math.min(count, index + perTick))) connect(identity);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function cpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

const reporter = setInterval(() => {
  send({ type: 'stats', at: Date.now(), identities: identities.length, connected, connecting, counters, rss: process.memoryUsage.rss(), cpuSeconds: cpuSeconds() } satisfies LoadStats);
}, 200);

async function stop(): Promise<void> {
  stopping = true;
  clearInterval(reporter);
  for (const identity of identities) {
    clearTimeout(identity.timer);
    identity.socket?.terminate();
  }
  httpsAgent.destroy();
  process.disconnect?.();
  setTimeout(() => process.exit(0), 200).unref();
}

process.on('message', (message: LoadCommand) => {
  if (message.cmd === 'grow') {
    grow(message.count).catch((error: unknown) => {
      send({ type: 'error', message: (error as Error).message });
      void stop();
    });
  } else if (message.cmd === 'reset-counters') counters = freshCounters();
  else if (message.cmd === 'stop') void stop();
});
// Without the parent there is nothing to do: never outlive it.
process.on('disconnect', () => {
  if (!stopping) void stop();
});
