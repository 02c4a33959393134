/**
 * Convergence benchmark: 50 agent processes track one configuration; a `strata changeconf` moves
 * one 20 MiB layer to a new version, and we time from the CLI's exit until every agent reports
 * `deployed` at the new revision. Agents poll every 30 s (the default), so the figure shows the
 * push over the channel, not polling. `--store both` runs the whole fleet on the embedded store,
 * then on NATS JetStream, and reports nats/embedded. Results in docs/benchmarks.md; run with
 * `npm run bench:convergence [-- --agents N --changes N --store both]`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, type StoreBackend, type TestServer } from '../test/helpers/strata-server.ts';
import { parseStores, ratio, startBackend, storeLabel, STORE_OPTION, type Backend } from './lib/backend.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { readProc, running } from './lib/proc.ts';
import { median, mib, table } from './lib/stats.ts';
import { apiGet, availableMemory, pollUntil, spawnAgent, stopAll, strataJson, type AgentProcess, type RolloutStatus } from './lib/strata.ts';
import { generateTree, type TreeSummary } from './lib/tree.ts';
import { onInterrupt } from './lib/interrupt.ts';

const CONFIGURATION = 'fleet';
/** deploy-tools' agents poll every 30 s plus 0–4 s of jitter: a change waits 0–34 s to be seen, 17 s on average. */
const DEPLOY_TOOLS = { pollSeconds: 30, jitterSeconds: 4, meanSeconds: 17, worstSeconds: 34 };
/** Memory one idle agent needs, with margin (an idle agent measures about 100 MiB, a deploying one more). */
const PER_AGENT_BYTES = 200 * 1024 * 1024;
const MIB = 1024 * 1024;

interface Options {
  agents: number;
  changes: number;
  batch: number;
  layerBytes: number;
  timeoutSeconds: number;
  stores: StoreBackend[];
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      agents: { type: 'string', default: '50' },
      changes: { type: 'string', default: '3' },
      batch: { type: 'string', default: '10' },
      'layer-mib': { type: 'string', default: '20' },
      'timeout-s': { type: 'string', default: '180' },
      ...STORE_OPTION,
    },
  });
  const int = (name: string, text: string, min: number, max: number): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(text)}`);
    return value;
  };
  return {
    agents: int('agents', values.agents, 1, 200),
    changes: int('changes', values.changes, 1, 10),
    batch: int('batch', values.batch, 1, 50),
    layerBytes: int('layer-mib', values['layer-mib'], 1, 256) * MIB,
    timeoutSeconds: int('timeout-s', values['timeout-s'], 10, 600),
    stores: parseStores(values.store),
  };
}

/** One change: from changeconf's exit to every agent deployed at the new revision. */
interface Change {
  change: number;
  version: string;
  revision: number;
  changeconfSeconds: number;
  /** Until the 100 ms poll of the status API first saw all agents up to date. */
  allDeployedSeconds: number;
  /** From each agent's own `deployed` timestamp (same clock): first, median and last agent. */
  firstAgentSeconds: number;
  medianAgentSeconds: number;
  lastAgentSeconds: number;
  /** Sum of the agents' VmRSS, highest 250 ms sample during the change. */
  fleetPeakRss: number;
  serverPeakRss: number;
  failed: number;
  /** Warnings and errors logged during the change (server log, agents' recent output), by message: why a change was slow. */
  warnings: Record<string, number>;
}

/** Counts pino lines at warn or above (level ≥ 40) logged at or after `sinceEpoch`, by message (and error code). */
function countWarnings(texts: string[], sinceEpoch: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const record = JSON.parse(line) as { level?: number; time?: string | number; msg?: string; err?: { code?: string; message?: string }; code?: string };
        const time = typeof record.time === 'string' ? Date.parse(record.time) : record.time ?? 0;
        if ((record.level ?? 0) < 40 || time < sinceEpoch) continue;
        const key = `${record.msg ?? '?'}${record.err?.code ?? record.code ? ` (${record.err?.code ?? record.code})` : ''}`.slice(0, 160);
        counts[key] = (counts[key] ?? 0) + 1;
      } catch {
        continue;
      }
    }
  }
  return counts;
}

/** Sum of VmRSS of the given pids, bytes. */
function fleetRss(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (readProc(pid)?.rss ?? 0), 0);
}

/** Waits until `count` agents report the configuration's current revision deployed. */
async function waitUpToDate(server: TestServer, count: number, revision: number, timeoutSeconds: number): Promise<RolloutStatus> {
  return pollUntil(`${count} agents deployed at revision ${revision}`, async () => {
    const status = await apiGet<RolloutStatus>(server, `/v1/configurations/${CONFIGURATION}/status`);
    if (status.revision !== revision) throw new Error(`the configuration is at revision ${status.revision}, not ${revision}`);
    if (status.failed > 0) {
      const failed = status.rows.find((row) => row.phase === 'failed');
      throw new Error(`agent ${failed?.agent} failed: ${failed?.error?.code} ${failed?.error?.message}`);
    }
    return status.upToDate >= count ? status : undefined;
  }, timeoutSeconds * 1000);
}

/** Generates one version of the changing layer: half text, half random, seeded by the version. */
function generateLayer(dir: string, bytes: number, version: number): TreeSummary {
  mkdirSync(dir, { recursive: true });
  return generateTree(dir, { totalBytes: bytes, smallFiles: Math.max(1, Math.round(100 * bytes / (20 * MIB))), largeFiles: 0, seed: 0xc0ffee + version });
}

/** What is running now, so Ctrl-C and failures can stop it. */
const live: { agents: AgentProcess[]; backend: Backend | undefined } = { agents: [], backend: undefined };

/** Stops the agents (SIGTERM, SIGKILL after 10 s) and the backend of the fleet running now. */
async function stopFleet(): Promise<void> {
  const { killed } = await stopAll([...live.agents.map((agent) => agent.child), ...running], 10_000);
  if (killed > 0) console.error(`${killed} agents needed SIGKILL`);
  live.agents = [];
  await live.backend?.stop();
  live.backend = undefined;
}

/** One fleet on one backend: push the layers, start the agents, time the changes, stop everything. */
async function runFleet(store: StoreBackend, root: string, options: Options, machine: Machine) {
  const backend = await startBackend(root, store);
  live.backend = backend;
  const server: TestServer = backend.servers[0]!;
  const agents = live.agents;
  const joinToken = backend.joinToken;
  console.log(`\n== ${storeLabel(store)} store: server ${server.url}; ${mib(availableMemory())} MiB available for ${options.agents} agents on ${machine.cpus} CPUs ==`);
  // Every version of the layer is pushed up front, so the timed part is the change alone.
  const base = path.join(root, 'layers/base');
  mkdirSync(base, { recursive: true });
  generateTree(base, { totalBytes: MIB, smallFiles: 50, largeFiles: 0, seed: 0xba5e });
  await strataJson(server, ['push', base, '--name', 'base', '--version', 'v1']);
  const layers: { version: string; summary: TreeSummary; compressed: number }[] = [];
  for (let version = 1; version <= options.changes + 1; version += 1) {
    const dir = path.join(root, `layers/data-v${version}`);
    const summary = generateLayer(dir, options.layerBytes, version);
    const { result } = await strataJson<{ size: number }>(server, ['push', dir, '--name', 'data', '--version', `v${version}`]);
    layers.push({ version: `v${version}`, summary, compressed: result.size });
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`layer data: ${layers[0]!.summary.files} files, ${mib(layers[0]!.summary.bytes)} MiB (${mib(layers[0]!.summary.textBytes)} text, ${mib(layers[0]!.summary.randomBytes)} random), about ${mib(layers[0]!.compressed)} MiB compressed; ${layers.length} versions pushed`);
  const { result: created } = await strataJson<{ revision: number }>(server, ['addconf', '--name', CONFIGURATION, '--layer', 'base:v1', '--layer', 'data:v1']);
  let revision = created.revision;

  const startAt = performance.now();
  for (let first = 0; first < options.agents; first += options.batch) {
    const count = Math.min(options.batch, options.agents - first);
    for (let index = first; index < first + count; index += 1) {
      const name = `conv-${String(index + 1).padStart(3, '0')}`;
      agents.push(spawnAgent({
        name, dir: path.join(root, `agents-${store}`, name),
        args: ['--server', server.url, '--join-token', joinToken, '--name', name, '--track', CONFIGURATION, '--log-level', 'warn'],
      }));
    }
    try {
      await waitUpToDate(server, agents.length, revision, options.timeoutSeconds);
    } catch (error) {
      const dead = agents.find((agent) => agent.child.exitCode !== null);
      throw new Error(`${(error as Error).message}${dead ? `\nagent ${dead.name} exited with ${dead.child.exitCode}:\n${dead.tail()}` : ''}`);
    }
    console.log(`${agents.length} agents enrolled and deployed revision ${revision} (${((performance.now() - startAt) / 1000).toFixed(1)} s); ${mib(availableMemory())} MiB available`);
  }
  const pids = agents.map((agent) => agent.child.pid!);
  await new Promise((resolve) => setTimeout(resolve, 5000));
  const idleFleetRss = fleetRss(pids);
  const idleServerRss = readProc(server.process.pid!)?.rss ?? 0;
  console.log(`idle: agents' RSS ${mib(idleFleetRss)} MiB in total (${mib(idleFleetRss / agents.length)} MiB each), server ${mib(idleServerRss)} MiB`);

  const changes: Change[] = [];
  for (let change = 1; change <= options.changes; change += 1) {
    const version = `v${change + 1}`;
    await new Promise((resolve) => setTimeout(resolve, 3000));
    let fleetPeakRss = 0;
    let serverPeakRss = 0;
    const sampler = setInterval(() => {
      fleetPeakRss = Math.max(fleetPeakRss, fleetRss(pids));
      serverPeakRss = Math.max(serverPeakRss, readProc(server.process.pid!)?.rss ?? 0);
    }, 250);
    const logFrom = server.logs().length;
    let status: RolloutStatus;
    let changed: { configuration: { revision: number } };
    let changeconfSeconds: number;
    let exitedAt: number;
    let exitedEpoch: number;
    try {
      const { result, run } = await strataJson<{ configuration: { revision: number } }>(server, ['changeconf', '--name', CONFIGURATION, '--component', 'data', '--version', version]);
      exitedAt = performance.now();
      exitedEpoch = Date.now();
      changed = result;
      changeconfSeconds = run.seconds;
      revision = changed.configuration.revision;
      status = await waitUpToDate(server, agents.length, revision, options.timeoutSeconds);
    } finally {
      clearInterval(sampler);
    }
    const allDeployedSeconds = (performance.now() - exitedAt) / 1000;
    const perAgent = status.rows.map((row) => (Date.parse((row as { at?: string }).at ?? '') - exitedEpoch) / 1000).filter((value) => !Number.isNaN(value));
    changes.push({
      change, version, revision, changeconfSeconds, allDeployedSeconds,
      firstAgentSeconds: Math.min(...perAgent), medianAgentSeconds: median(perAgent), lastAgentSeconds: Math.max(...perAgent),
      fleetPeakRss, serverPeakRss, failed: status.failed,
      warnings: countWarnings([server.logs().slice(logFrom), ...agents.map((agent) => agent.tail())], exitedEpoch - 2000),
    });
    const last = changes.at(-1)!;
    console.log(`change ${change} (data → ${version}, revision ${revision}): all ${agents.length} deployed ${allDeployedSeconds.toFixed(2)} s after changeconf exited (first agent ${last.firstAgentSeconds.toFixed(2)} s, median ${last.medianAgentSeconds.toFixed(2)} s, last ${last.lastAgentSeconds.toFixed(2)} s); agents' RSS peak ${mib(fleetPeakRss)} MiB in total`);
    if (Object.keys(last.warnings).length > 0) console.log(`  warnings logged during the change: ${JSON.stringify(last.warnings)}`);
  }

  const natsRss = backend.readNats()?.rss;
  const summary = {
    store,
    agents: agents.length,
    allDeployedSeconds: median(changes.map((c) => c.allDeployedSeconds)),
    firstAgentSeconds: median(changes.map((c) => c.firstAgentSeconds)),
    medianAgentSeconds: median(changes.map((c) => c.medianAgentSeconds)),
    lastAgentSeconds: median(changes.map((c) => c.lastAgentSeconds)),
    changeconfSeconds: median(changes.map((c) => c.changeconfSeconds)),
    idleFleetRss, idleServerRss,
    fleetPeakRss: Math.max(...changes.map((c) => c.fleetPeakRss)),
    serverPeakRss: Math.max(...changes.map((c) => c.serverPeakRss)),
    ...(natsRss === undefined ? {} : { natsRss, natsCpuSeconds: backend.readNats()?.cpu }),
  };
  const s = (seconds: number): string => `${seconds.toFixed(2)} s`;
  const rows = [['change', 'version', 'changeconf', 'all deployed', 'first agent', 'median agent', 'last agent', 'agents RSS peak (sum)', 'server RSS peak']];
  for (const c of changes) rows.push([String(c.change), c.version, s(c.changeconfSeconds), s(c.allDeployedSeconds), s(c.firstAgentSeconds), s(c.medianAgentSeconds), s(c.lastAgentSeconds), `${mib(c.fleetPeakRss)} MiB`, `${mib(c.serverPeakRss)} MiB`]);
  console.log(`\n${table(rows)}\n`);
  console.log(table([
    ['', 'median', 'deploy-tools (poll 30 s + 0–4 s)'],
    [`all ${agents.length} agents deployed, after changeconf exits`, s(summary.allDeployedSeconds), `${DEPLOY_TOOLS.worstSeconds} s worst until the last agent has seen it`],
    ['first agent deployed', s(summary.firstAgentSeconds), ''],
    ['median agent deployed', s(summary.medianAgentSeconds), `${DEPLOY_TOOLS.meanSeconds} s mean until an agent has seen it`],
    ['changeconf (CLI, spawn to exit)', s(summary.changeconfSeconds), ''],
    ['agents RSS idle (sum / each)', `${mib(idleFleetRss)} / ${mib(idleFleetRss / agents.length)} MiB`, ''],
    ['agents RSS peak during a change (sum)', `${mib(summary.fleetPeakRss)} MiB`, ''],
    ['server RSS idle / peak', `${mib(idleServerRss)} / ${mib(summary.serverPeakRss)} MiB`, ''],
    ...(natsRss === undefined ? [] : [['nats-server RSS after the changes / CPU in all', `${mib(natsRss)} MiB / ${(summary.natsCpuSeconds ?? 0).toFixed(1)} s`, '']]),
  ]));
  await stopFleet();
  rmSync(path.join(root, `agents-${store}`), { recursive: true, force: true });
  return { summary, changes, layers };
}

async function main(): Promise<void> {
  const options = parseOptions();
  const machine = describeMachine();
  const needed = options.agents * PER_AGENT_BYTES + 1024 * MIB;
  const available = availableMemory();
  if (available < needed) throw new Error(`${options.agents} agents need about ${mib(needed)} MiB of free memory, and only ${mib(available)} MiB is available: use --agents with fewer`);
  const root = mkdtempSync(path.join(os.tmpdir(), 'strata-bench-convergence-'));
  let cleaning: Promise<void> | undefined;
  const cleanUp = (): Promise<void> => {
    cleaning ??= (async () => {
      await stopFleet();
      rmSync(root, { recursive: true, force: true });
    })();
    return cleaning;
  };
  onInterrupt(`stopping the agents and removing ${root}`, cleanUp);
  try {
    const fleets: Awaited<ReturnType<typeof runFleet>>[] = [];
    for (const store of options.stores) fleets.push(await runFleet(store, root, options, machine));
    const embedded = fleets.find((f) => f.summary.store === 'sqlite')?.summary;
    const nats = fleets.find((f) => f.summary.store === 'nats')?.summary;
    let ratios: { allDeployed: string; firstAgent: string; medianAgent: string; serverIdleRss: string } | undefined;
    if (embedded && nats) {
      ratios = {
        allDeployed: ratio(nats.allDeployedSeconds, embedded.allDeployedSeconds),
        firstAgent: ratio(nats.firstAgentSeconds, embedded.firstAgentSeconds),
        medianAgent: ratio(nats.medianAgentSeconds, embedded.medianAgentSeconds),
        serverIdleRss: ratio(nats.idleServerRss, embedded.idleServerRss),
      };
      const s = (seconds: number): string => `${seconds.toFixed(2)} s`;
      console.log(`\n${table([
        ['median', 'embedded', 'nats', 'nats / embedded'],
        [`all ${embedded.agents} agents deployed`, s(embedded.allDeployedSeconds), s(nats.allDeployedSeconds), ratios.allDeployed],
        ['first agent deployed', s(embedded.firstAgentSeconds), s(nats.firstAgentSeconds), ratios.firstAgent],
        ['median agent deployed', s(embedded.medianAgentSeconds), s(nats.medianAgentSeconds), ratios.medianAgent],
        ['server RSS idle', `${mib(embedded.idleServerRss)} MiB`, `${mib(nats.idleServerRss)} MiB (+ nats-server ${mib(nats.natsRss ?? 0)} MiB)`, ratios.serverIdleRss],
      ])}`);
    }
    const date = new Date().toISOString().slice(0, 10);
    const outDir = path.join(ROOT, 'bench/out');
    mkdirSync(outDir, { recursive: true });
    // A run with a non-default agent count (an experiment) or on NATS must not overwrite the default run's results.
    const storeSuffix = options.stores.length === 1 && options.stores[0] === 'sqlite' ? '' : `-${options.stores.join('-')}`;
    const outFile = path.join(outDir, `convergence-${date}${options.agents === 50 ? '' : `-${options.agents}-agents`}${storeSuffix}.json`);
    writeFileSync(outFile, `${JSON.stringify({ benchmark: 'convergence', date: new Date().toISOString(), machine, options, deployTools: DEPLOY_TOOLS, fleets, ratios }, null, 2)}\n`);
    console.log(`\nwrote ${path.relative(ROOT, outFile)}`);
  } finally {
    await cleanUp();
  }
}

await main();
