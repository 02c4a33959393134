/**
 * Fan-out benchmark: a real `strata server` (TLS, SQLite store) with N agent channels held by one
 * load-generator process (bench/lib/load-agents.ts); times `POST /v1/orders` ping to all of them,
 * from the request to the `done` line, repeated; reads the server's RSS; then restarts the server
 * under the largest N and times the reconnect storm.
 *
 * With `--store nats --replicas 2`, two server replicas share one nats-server; the generator spreads
 * the sessions over both (session i on replica i mod 2), the order goes through replica A, and each
 * replica's and the nats-server's RSS and CPU are read. `--store both` runs the embedded single
 * server first, then NATS, and reports nats/embedded. The storm runs on the embedded store only.
 *
 *   node bench/fanout.ts [--sizes 1000,10000] [--repeats 20,10] [--rate 500] [--no-storm] [--store both --replicas 2]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createHttpClient, type HttpClient } from '../src/lib/http-client.ts';
import type { OrderEvent } from '../src/protocol/order-api.ts';
import { ROOT, startServer, type StoreBackend, type TestServer } from '../test/helpers/strata-server.ts';
import { parseStores, ratio, startBackend, storeLabel, STORE_OPTION, type Backend } from './lib/backend.ts';
import { describeMachine } from './lib/machine.ts';
import { readProc, sampleProc, type Peaks } from './lib/proc.ts';
import { median, mib, table } from './lib/stats.ts';
import type { LoadCommand, LoadGrown, LoadStats } from './lib/load-agents.ts';

const { values: flags } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000' },
    repeats: { type: 'string', default: '20,10' },
    rate: { type: 'string', default: '500' },
    'no-storm': { type: 'boolean', default: false },
    'storm-limit': { type: 'string', default: '60' },
    replicas: { type: 'string', default: '1' },
    ...STORE_OPTION,
  },
});
const stores = parseStores(flags.store);
const replicas = Number(flags.replicas);
if (!Number.isInteger(replicas) || replicas < 1 || replicas > 4) throw new Error('--replicas: 1 to 4 (server replicas on one NATS; the embedded store always runs one)');
if (replicas > 1 && !stores.includes('nats')) throw new Error('--replicas needs --store nats or both');
const sizes = flags.sizes.split(',').map(Number);
const repeatList = flags.repeats.split(',').map(Number);
if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 15_000)) throw new Error('--sizes: whole numbers from 1 to 15000, ascending');
if (sizes.some((n, i) => i > 0 && n <= sizes[i - 1]!)) throw new Error('--sizes must be ascending (the generator only grows)');
const repeatsFor = (index: number): number => repeatList[Math.min(index, repeatList.length - 1)] ?? 10;
const rate = Number(flags.rate);
const stormLimitMs = Number(flags['storm-limit']) * 1000;
const DATE = '2026-11-22';

/** Percentile by nearest rank (p99 of 10 samples is the maximum). */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the load generator as a child process ----

interface Generator {
  child: ChildProcess;
  stats: LoadStats | undefined;
  history: LoadStats[];
  command(message: LoadCommand): void;
  nextGrown(): Promise<LoadGrown>;
  /** Polls the latest stats until `check` is true, or throws after `timeoutMs`. */
  until(what: string, check: (stats: LoadStats) => boolean, timeoutMs: number): Promise<LoadStats>;
  stderr(): string;
}

function startGenerator(servers: TestServer[], joinToken: string): Generator {
  const child = spawn(process.execPath, ['--max-semi-space-size=4', path.join(ROOT, 'bench/lib/load-agents.ts')], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    env: {
      PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp',
      // Every replica's certificate comes from the one CA in the store, so replica A's CA file fits all.
      FANOUT_SERVER: servers.map((server) => server.url).join(','), FANOUT_CA: path.join(servers[0]!.dataDir, 'tls', 'ca.crt'), FANOUT_JOIN_TOKEN: joinToken,
      FANOUT_PREFIX: 'load', FANOUT_RATE: String(rate), FANOUT_BACKOFF_BASE_MS: '1000', FANOUT_BACKOFF_CAP_MS: '5000', FANOUT_ENROLL_PARALLEL: '16',
    },
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8192);
  });
  const grownWaiters: ((grown: LoadGrown) => void)[] = [];
  let failure: string | undefined;
  const generator: Generator = {
    child, stats: undefined, history: [],
    command: (message) => child.send(message),
    nextGrown: () => new Promise((resolve) => grownWaiters.push(resolve)),
    async until(what, check, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        if (failure) throw new Error(`load generator: ${failure}`);
        if (child.exitCode !== null) throw new Error(`load generator exited with ${child.exitCode}: ${stderr}`);
        if (generator.stats && check(generator.stats)) return generator.stats;
        if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; last stats ${JSON.stringify(generator.stats)}`);
        await sleep(50);
      }
    },
    stderr: () => stderr,
  };
  child.on('message', (message: LoadStats | LoadGrown | { type: 'error'; message: string }) => {
    if (message.type === 'stats') {
      generator.stats = message;
      generator.history.push(message);
      if (generator.history.length > 20_000) generator.history.splice(0, 10_000);
    } else if (message.type === 'grown') grownWaiters.shift()?.(message);
    else if (message.type === 'error') failure = message.message;
  });
  return generator;
}

// ---- one timed order ----

interface OrderRun {
  id: string;
  /** Request → `done` line, ms. */
  totalMs: number;
  /** Request → the `order` line (target resolved, order recorded), ms. */
  firstLineMs: number;
  /** Request → the last `result` line, ms. */
  lastResultMs: number;
  hosts: number;
  ok: number;
  codes: Record<string, number>;
  summary: unknown;
  /** Replica A, which took the request. */
  server: Peaks;
  /** Every replica, A first. */
  replicas: Peaks[];
  /** The nats-server (NATS only). */
  nats?: Peaks;
}

/** The processes whose memory and CPU an order is charged with: the replicas (A takes the request) and the nats-server. */
interface Watched {
  replicaPids: number[];
  natsPid: number | undefined;
}

async function timedPing(client: HttpClient, watched: Watched): Promise<OrderRun> {
  const samplers = watched.replicaPids.map((pid) => sampleProc(pid, 50));
  const natsSampler = watched.natsPid === undefined ? undefined : sampleProc(watched.natsPid, 50);
  const started = performance.now();
  const response = await client.request({ method: 'POST', path: '/v1/orders', json: { target: { all: true }, args: { verb: 'ping' }, timeoutMs: 30_000 } });
  if (response.status !== 200) throw new Error(`POST /v1/orders: HTTP ${response.status}: ${await response.text()}`);
  let id = '';
  let firstLineMs = Number.NaN;
  let lastResultMs = Number.NaN;
  let totalMs = Number.NaN;
  let hosts = 0;
  let ok = 0;
  let summary: unknown;
  const codes: Record<string, number> = {};
  const lines = createInterface({ input: response.body.setEncoding('utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line) continue;
    const event = JSON.parse(line) as OrderEvent;
    if (event.type === 'order') {
      firstLineMs = performance.now() - started;
      hosts = event.hosts.length;
      id = event.id;
    } else if (event.type === 'result') {
      lastResultMs = performance.now() - started;
      if (event.result.ok) ok += 1;
      const code = String(event.result.code);
      codes[code] = (codes[code] ?? 0) + 1;
    } else if (event.type === 'done') {
      totalMs = performance.now() - started;
      summary = event.summary;
    }
  }
  if (Number.isNaN(totalMs)) throw new Error('the order stream ended without a done line');
  const replicaPeaks = samplers.map((sampler) => sampler.stop());
  const natsPeaks = natsSampler?.stop();
  return { id, totalMs, firstLineMs, lastResultMs, hosts, ok, codes, summary, server: replicaPeaks[0]!, replicas: replicaPeaks, ...(natsPeaks ? { nats: natsPeaks } : {}) };
}

// ---- the run ----

interface SizeResult {
  sessions: number;
  enrollSeconds: number;
  keygenSeconds: number;
  connectSeconds: number;
  serverRssIdle: number;
  serverHwm: number;
  serverRssPeakDuringOrders: number;
  generatorRss: number;
  warmup: OrderRun;
  orders: OrderRun[];
  p50: number;
  p99: number;
  min: number;
  max: number;
  firstLineMedian: number;
  shortfalls: { run: number; ok: number; codes: Record<string, number> }[];
  serverCpuPerOrder: number;
  /** Host results in the stored record of the last order (GET /v1/orders/{id}), or why it could not be read. */
  storedResults: number | string;
  /** Per replica (A first): idle RSS, VmHWM after the orders, CPU per order (median), idle CPU share over 3 s. */
  replicas: { rssIdle: number; hwm: number; cpuPerOrder: number; idleCpuShare: number }[];
  /** The nats-server (NATS only): idle RSS, VmHWM after the orders, CPU per order (median), idle CPU share. */
  nats?: { rssIdle: number; hwm: number; cpuPerOrder: number; idleCpuShare: number };
}

interface StormResult {
  sessions: number;
  sigtermToExitMs: number;
  sigtermToListeningMs: number;
  allBackAfterSigtermMs: number | undefined;
  allBackAfterListeningMs: number | undefined;
  milestones: Record<string, number | undefined>;
  serverCpuSeconds: number;
  stormWallSeconds: number;
  generatorCpuSeconds: number;
  series: { t: number; connected: number; connecting: number; attempts: number; serverOpened: number }[];
  counters: LoadStats['counters'];
  serverRssAfter: number;
  serverHwmAfter: number;
  verify: OrderRun | undefined;
  connectedAtEnd: number;
}

const temp = mkdtempSync(path.join(os.tmpdir(), 'strata-bench-fanout-'));
/** What runs now (one phase at a time), for the clean-up on failure or Ctrl-C. */
let backend: Backend | undefined;
let generator: Generator | undefined;
let cleaned = false;

/** Stops the generator (it closes its sockets), then the replicas and the nats-server. */
async function stopPhase(): Promise<void> {
  const current = generator;
  generator = undefined;
  if (current && current.child.exitCode === null) {
    if (current.child.connected) current.command({ cmd: 'stop' });
    await Promise.race([once(current.child, 'exit'), sleep(5000)]);
    if (current.child.exitCode === null) current.child.kill('SIGKILL');
  }
  const running = backend;
  backend = undefined;
  if (running) {
    await Promise.race([running.stop(), sleep(15_000)]).catch(() => undefined);
    running.kill();
  }
}

async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await stopPhase();
  rmSync(temp, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** How many host results the stored record of order `id` holds: the outcome is one document, which must fit the store. */
async function storedResults(client: HttpClient, id: string): Promise<number | string> {
  try {
    const response = await client.request({ method: 'GET', path: `/v1/orders/${encodeURIComponent(id)}` });
    const text = await response.text();
    if (response.status !== 200) return `HTTP ${response.status}: ${text.slice(0, 200)}`;
    const order = JSON.parse(text) as { results?: Record<string, unknown>; finishedAt?: string };
    return order.results === undefined ? `no results stored (finishedAt ${order.finishedAt ?? 'none'})` : Object.keys(order.results).length;
  } catch (error) {
    return (error as Error).message.slice(0, 200);
  }
}

/** CPU seconds per wall second of a process over `ms`, or 0 when it cannot be read. */
async function cpuShares(pids: (number | undefined)[], ms: number): Promise<number[]> {
  const before = pids.map((pid) => (pid === undefined ? undefined : readProc(pid)?.cpu));
  await sleep(ms);
  return pids.map((pid, index) => {
    const after = pid === undefined ? undefined : readProc(pid)?.cpu;
    const first = before[index];
    return after === undefined || first === undefined ? 0 : (after - first) / (ms / 1000);
  });
}

/** One backend: start it and the generator, grow through the sizes, time the orders, maybe the storm, stop. */
async function runPhase(store: StoreBackend) {
  const replicaCount = store === 'nats' ? replicas : 1;
  backend = await startBackend(temp, store, { replicas: replicaCount });
  const current = backend;
  let server = current.servers[0]!;
  const dataDir = server.dataDir;
  const serverPid = (): number => server.process.pid!;
  const watched = (): Watched => ({ replicaPids: current.servers.map((s) => s.process.pid!), natsPid: current.natsPid() });
  const port = new URL(server.url).port;
  console.log(`\n######## ${storeLabel(store)} store, ${replicaCount} server${replicaCount === 1 ? '' : ' replicas'}: ${current.servers.map((s) => `${s.url} (pid ${s.process.pid})`).join(', ')}${current.natsPid() ? `; nats-server pid ${current.natsPid()}` : ''}`);
  generator = startGenerator(current.servers, current.joinToken);
  const gen = generator;
  let client = createHttpClient({ baseUrl: server.url, token: server.token, fingerprint: server.fingerprint, timeoutMs: 60_000 });
  const results: SizeResult[] = [];

  for (const [index, sessions] of sizes.entries()) {
    const repeats = repeatsFor(index);
    console.log(`\n== ${sessions} sessions (${storeLabel(store)}, ${replicaCount} server${replicaCount === 1 ? '' : 's'}) ==`);
    const grownPromise = gen.nextGrown();
    gen.command({ cmd: 'grow', count: sessions });
    const grown = await Promise.race([grownPromise, gen.until('enrollment', () => false, 600_000)]) as LoadGrown;
    console.log(`enrolled ${grown.enrolled} more (${grown.count} in all): keys ${grown.keygenSeconds.toFixed(1)} s, enrollment ${grown.enrollSeconds.toFixed(1)} s`);
    const connectStart = performance.now();
    await gen.until(`${sessions} sessions connected`, (st) => st.connected >= sessions, 30_000 + (sessions / rate) * 3000);
    const connectSeconds = (performance.now() - connectStart) / 1000;
    console.log(`all ${sessions} connected ${connectSeconds.toFixed(1)} s after enrollment`);
    const pids = watched();
    // The 3 s of settling double as the idle CPU window: channel pings, the bus's beats.
    const idleShares = await cpuShares([...pids.replicaPids, pids.natsPid], 3000);
    const idle = pids.replicaPids.map((pid) => readProc(pid)!);
    const natsIdle = current.readNats();
    const warmup = await timedPing(client, pids);
    console.log(`warm-up order: ${warmup.totalMs.toFixed(0)} ms, ok ${warmup.ok}/${sessions}`);
    const orders: OrderRun[] = [];
    for (let run = 1; run <= repeats; run += 1) {
      await sleep(500);
      const order = await timedPing(client, pids);
      orders.push(order);
      console.log(`order ${run}/${repeats}: done after ${order.totalMs.toFixed(0)} ms (order line ${order.firstLineMs.toFixed(0)} ms, last result ${order.lastResultMs.toFixed(0)} ms), ok ${order.ok}/${order.hosts}${order.ok === sessions ? '' : ` SHORT: ${JSON.stringify(order.codes)}`}`);
    }
    const stored = await storedResults(client, orders.at(-1)!.id);
    console.log(`stored record of the last order: ${typeof stored === 'number' ? `${stored} host results` : stored}`);
    const end = pids.replicaPids.map((pid) => readProc(pid)!);
    const natsEnd = current.readNats();
    const totals = orders.map((o) => o.totalMs);
    results.push({
      sessions, enrollSeconds: grown.enrollSeconds, keygenSeconds: grown.keygenSeconds, connectSeconds,
      serverRssIdle: idle[0]!.rss, serverHwm: end[0]!.hwm, serverRssPeakDuringOrders: Math.max(...orders.map((o) => o.server.sampledRss)),
      generatorRss: gen.stats?.rss ?? 0, warmup, orders,
      p50: median(totals), p99: percentile(totals, 99), min: Math.min(...totals), max: Math.max(...totals),
      firstLineMedian: median(orders.map((o) => o.firstLineMs)),
      shortfalls: orders.flatMap((o, i) => (o.ok === sessions && o.hosts === sessions ? [] : [{ run: i + 1, ok: o.ok, codes: o.codes }])),
      serverCpuPerOrder: median(orders.map((o) => o.server.cpu)),
      storedResults: stored,
      replicas: pids.replicaPids.map((_, r) => ({ rssIdle: idle[r]!.rss, hwm: end[r]!.hwm, cpuPerOrder: median(orders.map((o) => o.replicas[r]!.cpu)), idleCpuShare: idleShares[r]! })),
      ...(natsIdle && natsEnd ? { nats: { rssIdle: natsIdle.rss, hwm: natsEnd.hwm, cpuPerOrder: median(orders.map((o) => o.nats?.cpu ?? 0)), idleCpuShare: idleShares[pids.replicaPids.length]! } } : {}),
    });
  }

  let storm: StormResult | undefined;
  if (!flags['no-storm'] && store === 'sqlite') {
    const sessions = sizes[sizes.length - 1]!;
    console.log(`\n== reconnect storm: restarting the server under ${sessions} sessions ==`);
    client.close();
    gen.command({ cmd: 'reset-counters' });
    await sleep(300);
    const t0 = performance.now();
    const exitCode = await server.stop('SIGTERM');
    const sigtermToExitMs = performance.now() - t0;
    console.log(`server exited with ${exitCode} after ${sigtermToExitMs.toFixed(0)} ms`);
    server = await startServer(dataDir, [], { listen: `127.0.0.1:${port}` });
    backend.servers[0] = server;
    const sigtermToListeningMs = performance.now() - t0;
    console.log(`new server listening ${sigtermToListeningMs.toFixed(0)} ms after SIGTERM`);
    const stormSampler = sampleProc(serverPid(), 100);
    const generatorCpuBefore = gen.stats!.cpuSeconds;
    const historyFrom = gen.history.length;
    const milestones: Record<string, number | undefined> = { '50%': undefined, '90%': undefined, '99%': undefined, '100%': undefined };
    let allBack: number | undefined;
    try {
      await gen.until('every session back', (s) => {
        const elapsed = performance.now() - t0;
        for (const [label, share] of [['50%', 0.5], ['90%', 0.9], ['99%', 0.99], ['100%', 1]] as const) {
          if (milestones[label] === undefined && s.connected >= sessions * share) milestones[label] = elapsed;
        }
        return s.connected >= sessions;
      }, stormLimitMs);
      allBack = performance.now() - t0;
    } catch (error) {
      console.log((error as Error).message);
    }
    const stormServer = stormSampler.stop();
    const stormWallSeconds = (performance.now() - t0 - sigtermToListeningMs) / 1000;
    const generatorCpu = gen.stats!.cpuSeconds - generatorCpuBefore;
    // One point per second: the generator's view, and channels the new server logged as opened.
    const series: { t: number; connected: number; connecting: number; attempts: number; serverOpened: number }[] = [];
    const opened = server.logs().split('\n').filter((line) => line.includes('"agent channel opened"')).map((line) => {
      try {
        return Date.parse((JSON.parse(line) as { time: string }).time);
      } catch {
        return Number.NaN;
      }
    });
    const wallT0 = Date.now() - (performance.now() - t0);
    for (const stats of gen.history.slice(historyFrom)) {
      const t = Math.round((stats.at - wallT0) / 1000);
      if (series.length > 0 && series[series.length - 1]!.t === t) continue;
      series.push({ t, connected: stats.connected, connecting: stats.connecting, attempts: stats.counters.attempts, serverOpened: opened.filter((time) => time <= stats.at).length });
    }
    console.log(`server CPU ${stormServer.cpu.toFixed(1)} s in ${stormWallSeconds.toFixed(1)} s from listening to all back (${((stormServer.cpu / sessions) * 1000).toFixed(2)} ms per session); generator CPU ${generatorCpu.toFixed(1)} s`);
    console.log(table([['t (s after SIGTERM)', 'generator: connected', 'connecting', 'attempts', 'server: channels opened'], ...series.map((p) => [String(p.t), String(p.connected), String(p.connecting), String(p.attempts), String(p.serverOpened)])]));
    const counters = gen.stats!.counters;
    console.log(`all back: ${allBack === undefined ? 'NO' : `${(allBack / 1000).toFixed(2)} s after SIGTERM`}; attempts ${counters.attempts}, failed ${JSON.stringify(counters.failed)}, refused for good ${counters.refusedForGood}`);
    await sleep(3000);
    client = createHttpClient({ baseUrl: server.url, token: server.token, fingerprint: server.fingerprint, timeoutMs: 60_000 });
    let verify: OrderRun | undefined;
    try {
      verify = await timedPing(client, watched());
      console.log(`ping after the storm: ${verify.totalMs.toFixed(0)} ms, ok ${verify.ok}/${verify.hosts}`);
    } catch (error) {
      console.log(`ping after the storm failed: ${(error as Error).message}`);
    }
    const after = readProc(serverPid())!;
    storm = {
      sessions, sigtermToExitMs, sigtermToListeningMs,
      allBackAfterSigtermMs: allBack, allBackAfterListeningMs: allBack === undefined ? undefined : allBack - sigtermToListeningMs,
      milestones, counters: gen.stats!.counters, serverCpuSeconds: stormServer.cpu, stormWallSeconds, generatorCpuSeconds: generatorCpu, series, serverRssAfter: after.rss, serverHwmAfter: after.hwm, verify, connectedAtEnd: gen.stats!.connected,
    };
  }
  client.close();
  const generatorStats = gen.stats;
  await stopPhase();
  return { store, replicas: replicaCount, results, storm, generator: generatorStats };
}

type Phase = Awaited<ReturnType<typeof runPhase>>;

/** Prints one phase's table. */
function reportPhase(phase: Phase): void {
  const targets: Record<number, number> = { 1000: 100, 10_000: 1000 };
  console.log(`\n${storeLabel(phase.store)} store, ${phase.replicas} server${phase.replicas === 1 ? '' : ' replicas'}:`);
  console.log(table([
    ['sessions', 'orders', 'p50', 'p99', 'min', 'max', 'order line (p50)', 'ok = N', 'target p50', 'server RSS idle / HWM', 'server CPU / order'],
    ...phase.results.map((r) => [
      String(r.sessions), String(r.orders.length), `${r.p50.toFixed(0)} ms`, `${r.p99.toFixed(0)} ms`, `${r.min.toFixed(0)} ms`, `${r.max.toFixed(0)} ms`,
      `${r.firstLineMedian.toFixed(0)} ms`, r.shortfalls.length === 0 ? 'every order' : `${r.shortfalls.length} short`,
      targets[r.sessions] ? `≤ ${targets[r.sessions]} ms` : '', `${mib(r.serverRssIdle)} / ${mib(r.serverHwm)} MiB`, `${r.serverCpuPerOrder.toFixed(2)} s`,
    ]),
  ]));
  console.log(table([
    ['sessions', 'process', 'sessions on it', 'RSS idle', 'VmHWM', 'CPU / order', 'CPU idle'],
    ...phase.results.flatMap((r) => [
      ...r.replicas.map((x, i) => [String(r.sessions), `replica ${String.fromCharCode(65 + i)}`, String(Math.round(r.sessions / r.replicas.length)), `${mib(x.rssIdle)} MiB`, `${mib(x.hwm)} MiB`, `${x.cpuPerOrder.toFixed(3)} s`, `${(x.idleCpuShare * 100).toFixed(1)}%`]),
      ...(r.nats ? [[String(r.sessions), 'nats-server', '', `${mib(r.nats.rssIdle)} MiB`, `${mib(r.nats.hwm)} MiB`, `${r.nats.cpuPerOrder.toFixed(3)} s`, `${(r.nats.idleCpuShare * 100).toFixed(1)}%`]] : []),
    ]),
  ]));
  const storm = phase.storm;
  if (storm) {
    console.log(`storm: server exit ${storm.sigtermToExitMs.toFixed(0)} ms, listening again ${storm.sigtermToListeningMs.toFixed(0)} ms, milestones ${JSON.stringify(Object.fromEntries(Object.entries(storm.milestones).map(([k, v]) => [k, v === undefined ? null : Math.round(v)])))} ms after SIGTERM`);
  }
  if (phase.generator) console.log(`load generator: RSS ${mib(phase.generator.rss)} MiB, CPU ${phase.generator.cpuSeconds.toFixed(1)} s in all`);
}

async function main(): Promise<void> {
  const machine = describeMachine();
  console.log(`temp: ${temp}; sizes ${sizes.join(', ')}; ${rate} connections/s; stores ${stores.join(', ')}${stores.includes('nats') ? ` (nats: ${replicas} replica${replicas === 1 ? '' : 's'})` : ''}; fd limit: see /proc/self/limits`);
  const phases: Phase[] = [];
  for (const store of stores) phases.push(await runPhase(store));

  // ---- report ----
  console.log(`\nmachine: ${machine.cpus} CPUs (${machine.cpuModel}), ${mib(machine.memoryBytes)} MiB, ${machine.kernel}, node ${machine.node}`);
  for (const phase of phases) reportPhase(phase);
  const embedded = phases.find((p) => p.store === 'sqlite');
  const nats = phases.find((p) => p.store === 'nats');
  const ratios: { sessions: number; p50: string; p99: string; firstLine: string }[] = [];
  if (embedded && nats) {
    for (const e of embedded.results) {
      const n = nats.results.find((r) => r.sessions === e.sessions);
      if (n) ratios.push({ sessions: e.sessions, p50: ratio(n.p50, e.p50), p99: ratio(n.p99, e.p99), firstLine: ratio(n.firstLineMedian, e.firstLineMedian) });
    }
    console.log(`\n${table([
      ['sessions', 'p50 embedded', `p50 nats (${nats.replicas} replicas)`, 'nats / embedded', 'p99 embedded', 'p99 nats', 'nats / embedded', 'order line nats / embedded'],
      ...ratios.map((x) => {
        const e = embedded.results.find((r) => r.sessions === x.sessions)!;
        const n = nats.results.find((r) => r.sessions === x.sessions)!;
        return [String(x.sessions), `${e.p50.toFixed(0)} ms`, `${n.p50.toFixed(0)} ms`, x.p50, `${e.p99.toFixed(0)} ms`, `${n.p99.toFixed(0)} ms`, x.p99, x.firstLine];
      }),
    ])}`);
  }
  mkdirSync(path.join(ROOT, 'bench/out'), { recursive: true });
  const defaults = flags.sizes === '1000,10000' && flags.store === 'sqlite';
  const storeSuffix = flags.store === 'sqlite' ? '' : `-${stores.join('-')}${stores.includes('nats') ? `-${replicas}r` : ''}`;
  const out = path.join(ROOT, 'bench/out', `fanout-${DATE}${defaults ? '' : `-${sizes.join('-')}${storeSuffix}`}.json`);
  writeFileSync(out, `${JSON.stringify({ date: DATE, machine, sizes, rate, stores, replicas, phases, ratios }, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

try {
  await main();
} catch (error) {
  console.error(`fanout benchmark failed: ${(error as Error).stack ?? error}`);
  for (const [index, server] of (backend?.servers ?? []).entries()) console.error(`replica ${index} log tail:\n${server.logs().slice(-3000)}`);
  if (generator) console.error(`load generator stderr tail:\n${generator.stderr()}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
