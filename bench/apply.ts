/**
 * Apply benchmark: one agent fetching, verifying and unpacking a 512 MiB configuration from a
 * local server (`strata agent --once` in a fresh directory, enrollment included), against
 * `curl -s URL | tar -xz` of the same archive in the same run. Target: within 1.3× of the
 * baseline. `--store both` runs the same against an embedded server and a NATS JetStream one,
 * interleaved, and reports nats/embedded. Results in docs/benchmarks.md; run with
 * `npm run bench:apply [-- --runs N --store both]`.
 */
import { existsSync, mkdirSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, type StoreBackend, type TestServer } from '../test/helpers/strata-server.ts';
import { benchWorkspace, parseStores, ratio, startBackend, storeLabel, STORE_OPTION, type Backend } from './lib/backend.ts';
import { applyOnce, type ApplyRun } from './lib/agent-apply.ts';
import { describeMachine } from './lib/machine.ts';
import { runTimed } from './lib/proc.ts';
import { median, mib, table } from './lib/stats.ts';
import { caFile, census, scaledIngestTree, strataJson, type TreeCensus } from './lib/strata.ts';
import { generateTree, INGEST_TREE } from './lib/tree.ts';

const TARGET_RATIO = 1.3;
const CURL = '/usr/bin/curl';
const CONFIGURATION = 'bench';
/**
 * The baseline as one fixed script: CA file, URL and target directory are positional arguments,
 * the token comes in the environment (not on a command line). bash wires the pipe between curl
 * and tar (see bench/ingest.ts for why not node). `tar -xz` runs gzip -d.
 */
const BASELINE_SCRIPT = 'set -o pipefail; /usr/bin/curl -sS --fail --cacert "$1" -H "Authorization: Bearer $BENCH_TOKEN" "$2" | tar -xz -C "$3"';

interface BaselineRun {
  seconds: number;
  tree: TreeCensus;
}

/** One backend's baseline and agent in one run. */
interface StoreRun {
  store: StoreBackend;
  baseline: BaselineRun;
  agent: ApplyRun;
}

interface Iteration {
  run: number;
  order: 'baseline-first' | 'agent-first';
  stores: StoreRun[];
}

/** A backend with the configuration pushed to it. */
interface Target {
  backend: Backend;
  server: TestServer;
  blob: string;
}

function parseOptions(): { runs: number; totalBytes: number; nodeFlags: string[]; stores: StoreBackend[] } {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      'size-mib': { type: 'string', default: String(INGEST_TREE.totalBytes / 1024 / 1024) },
      'node-flags': { type: 'string', default: '' },
      ...STORE_OPTION,
    },
  });
  const runs = Number(values.runs);
  const sizeMib = Number(values['size-mib']);
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error(`--runs must be 1 to 20, not ${JSON.stringify(values.runs)}`);
  if (!Number.isInteger(sizeMib) || sizeMib < 16 || sizeMib > 4096) throw new Error(`--size-mib must be an integer from 16 to 4096, not ${JSON.stringify(values['size-mib'])}`);
  const nodeFlags = values['node-flags'].split(/\s+/).filter(Boolean);
  for (const flag of nodeFlags) if (!/^--[a-z0-9-]+(=[A-Za-z0-9._-]+)?$/.test(flag)) throw new Error(`--node-flags: ${JSON.stringify(flag)} is not a node flag`);
  return { runs, totalBytes: sizeMib * 1024 * 1024, nodeFlags, stores: parseStores(values.store) };
}

/** Flushes dirty pages (the previous run's trees and their removal) so they do not land in the next timing. */
async function settle(): Promise<void> {
  await runTimed('sync', []);
}

async function runBaseline(server: TestServer, blob: string, target: string): Promise<BaselineRun> {
  mkdirSync(target);
  await settle();
  const run = await runTimed('bash', ['-c', BASELINE_SCRIPT, 'bench-apply', caFile(server), `${server.url}/v1/blobs/${blob}`, target], {
    env: { PATH: process.env['PATH'] ?? '', BENCH_TOKEN: server.token },
  });
  if (run.code !== 0) throw new Error(`baseline failed with ${run.code ?? run.signal}: ${run.stderr}`);
  return { seconds: run.seconds, tree: await census(target) };
}

async function runAgent(server: TestServer, joinToken: string, dir: string, name: string, nodeFlags: string[]): Promise<ApplyRun> {
  await settle();
  return applyOnce({ serverUrl: server.url, joinToken, dir, name, configuration: CONFIGURATION, nodeFlags });
}

/**
 * Nothing the runs create is deleted before the last run ends: not the source tree, not a run's
 * trees. On ext4 a new file skips inodes freed in the last minute (the kernel's
 * `recently_deleted` check reads the inode table for each candidate), so right after a
 * 20,000-file tree is removed every create pays for that walk: on this machine `tar -xzf` of the
 * same archive took 3.0 s into a fresh directory and 4.6 s right after such a removal, and the
 * runs drifted to twice their time as removals piled up. That cost lands on whichever side runs
 * next, not on either tool; so the trees stay and the workspace goes as a whole at the end. This
 * checks first that the disk holds them all: per run and backend a baseline tree, an agent tree
 * and the agent's cached blob (at most the tree's size), and the source tree once.
 */
function keptTreesFit(root: string, runs: number, stores: number, totalBytes: number): void {
  const needed = totalBytes * (1 + 3 * runs * stores);
  const { bavail, bsize } = statfsSync(root);
  const free = bavail * bsize;
  if (free < needed) throw new Error(`the runs keep every tree until the end and need ${mib(needed)} MiB on ${root}'s disk, which has ${mib(free)} MiB free: fewer --runs or a smaller --size-mib`);
}

function sameTree(a: TreeCensus, b: TreeCensus): boolean {
  return a.files === b.files && a.bytes === b.bytes && a.directories === b.directories && a.symlinks === b.symlinks;
}

/** Medians of one backend's runs. */
function summarize(runs: StoreRun[], totalBytes: number) {
  const agentSeconds = median(runs.map((r) => r.agent.seconds));
  const baselineSeconds = median(runs.map((r) => r.baseline.seconds));
  const phase = (from: keyof ApplyRun['phases'] | 'start', to: keyof ApplyRun['phases'] | 'exit'): number => median(runs.map((r) => {
    const at = (name: typeof from | typeof to): number => (name === 'start' ? 0 : name === 'exit' ? r.agent.seconds : r.agent.phases[name] ?? Number.NaN);
    return at(to) - at(from);
  }));
  return {
    baselineSeconds, agentSeconds, ratio: agentSeconds / baselineSeconds, meetsTarget: agentSeconds / baselineSeconds <= TARGET_RATIO,
    baselineMiBps: totalBytes / 1024 / 1024 / baselineSeconds, agentMiBps: totalBytes / 1024 / 1024 / agentSeconds,
    agentPeakRssMedian: median(runs.map((r) => r.agent.peakRss)), agentPeakRssMax: Math.max(...runs.map((r) => r.agent.peakRss)),
    agentCpuSecondsMedian: median(runs.map((r) => r.agent.cpuSeconds)),
    phases: {
      startToEnrolled: phase('start', 'enrolled'), enrolledToDownloading: phase('enrolled', 'downloading'), downloading: phase('downloading', 'unpacking'),
      unpackingToDeployed: phase('unpacking', 'deployed'), deployedToExit: phase('deployed', 'exit'),
    },
  };
}

type Summary = ReturnType<typeof summarize>;

/** Prints one backend's runs and medians. */
function report(store: StoreBackend, iterations: Iteration[], summary: Summary): void {
  const s = (seconds: number): string => `${seconds.toFixed(2)} s`;
  const rows = [['run', 'order', 'baseline', 'agent', 'enroll', 'download+verify', 'unpack+fsync+switch', 'agent peak RSS', 'agent CPU']];
  for (const it of iterations) {
    const r = it.stores.find((x) => x.store === store)!;
    const p = r.agent.phases;
    rows.push([String(it.run), it.order, s(r.baseline.seconds), s(r.agent.seconds), s(p.enrolled ?? Number.NaN), s((p.unpacking ?? Number.NaN) - (p.downloading ?? Number.NaN)), s((p.deployed ?? Number.NaN) - (p.unpacking ?? Number.NaN)), `${mib(r.agent.peakRss)} MiB`, s(r.agent.cpuSeconds)]);
  }
  console.log(`\n== ${storeLabel(store)} store ==\n${table(rows)}\n`);
  console.log(table([
    ['', 'median', 'target'],
    ['baseline curl | tar -xz', `${s(summary.baselineSeconds)} (${summary.baselineMiBps.toFixed(1)} MiB/s)`, ''],
    ['strata agent --once', `${s(summary.agentSeconds)} (${summary.agentMiBps.toFixed(1)} MiB/s)`, ''],
    ['ratio agent/baseline', `${summary.ratio.toFixed(2)}×`, `≤ ${TARGET_RATIO}× ${summary.meetsTarget ? 'met' : 'MISSED'}`],
    ['  spawn → enrolled', s(summary.phases.startToEnrolled), ''],
    ['  enrolled → downloading', s(summary.phases.enrolledToDownloading), ''],
    ['  download + verify', s(summary.phases.downloading), ''],
    ['  unpack + fsync + switch', s(summary.phases.unpackingToDeployed), ''],
    ['  deployed → exit', s(summary.phases.deployedToExit), ''],
    ['agent peak RSS (median / max)', `${mib(summary.agentPeakRssMedian)} / ${mib(summary.agentPeakRssMax)} MiB`, ''],
    ['agent CPU', s(summary.agentCpuSecondsMedian), ''],
  ]));
}

/** Runs one backend's baseline and agent; `agentFirst` swaps them. */
async function runStore(target: Target, root: string, run: number, agentFirst: boolean, nodeFlags: string[], sourceCensus: TreeCensus): Promise<StoreRun> {
  const store = target.backend.store;
  const baselineDir = path.join(root, `baseline-${store}-${run}`);
  const agentDir = path.join(root, `agent-${store}-${run}`);
  let baseline: BaselineRun;
  let agent: ApplyRun;
  if (agentFirst) {
    agent = await runAgent(target.server, target.backend.joinToken, agentDir, `bench-${run}`, nodeFlags);
    baseline = await runBaseline(target.server, target.blob, baselineDir);
  } else {
    baseline = await runBaseline(target.server, target.blob, baselineDir);
    agent = await runAgent(target.server, target.backend.joinToken, agentDir, `bench-${run}`, nodeFlags);
  }
  if (!sameTree(baseline.tree, sourceCensus)) throw new Error(`run ${run} (${store}): the baseline unpacked ${JSON.stringify(baseline.tree)}, the source was ${JSON.stringify(sourceCensus)}`);
  if (!sameTree(agent.tree, baseline.tree)) throw new Error(`run ${run} (${store}): the agent deployed ${JSON.stringify(agent.tree)}, the baseline unpacked ${JSON.stringify(baseline.tree)}`);
  const p = agent.phases;
  console.log(`run ${run} (${storeLabel(store)}): baseline ${baseline.seconds.toFixed(2)} s, agent ${agent.seconds.toFixed(2)} s (enrolled ${p.enrolled?.toFixed(2)} s, download from ${p.downloading?.toFixed(2)} s, unpack from ${p.unpacking?.toFixed(2)} s, deployed at ${p.deployed?.toFixed(2)} s), agent peak RSS ${mib(agent.peakRss)} MiB; trees identical (${agent.tree.files} files, ${agent.tree.bytes} bytes)`);
  // Both trees stay until the whole run ends: see keptTreesFit.
  return { store, baseline, agent };
}

async function main(): Promise<void> {
  const { runs, totalBytes, nodeFlags, stores } = parseOptions();
  if (!existsSync(CURL)) throw new Error(`${CURL} is missing: the apply baseline needs curl (apt-get install curl)`);
  const machine = describeMachine();
  const { root, backends, close } = benchWorkspace('strata-bench-apply-');
  try {
    keptTreesFit(root, runs, stores.length, totalBytes);
    const source = path.join(root, 'tree');
    mkdirSync(source);
    console.log(`generating ${mib(totalBytes)} MiB tree in ${source} …`);
    const treeSummary = generateTree(source, scaledIngestTree(totalBytes));
    const sourceCensus = await census(source);
    const targets: Target[] = [];
    let pushed: { blob: string; size: number; archive: { entries: number } } | undefined;
    for (const store of stores) {
      const backend = await startBackend(root, store);
      backends.push(backend);
      const server = backend.servers[0]!;
      const { result, run: pushRun } = await strataJson<{ blob: string; size: number; archive: { entries: number } }>(server, ['push', source, '--name', CONFIGURATION, '--version', 'v1']);
      await strataJson(server, ['addconf', '--name', CONFIGURATION, '--layer', `${CONFIGURATION}:v1`]);
      pushed = result;
      targets.push({ backend, server, blob: result.blob });
      console.log(`${storeLabel(store)} server ${server.url}: pushed as blob ${result.blob.slice(0, 12)} (${mib(result.size)} MiB, ${result.archive.entries} entries) in ${pushRun.seconds.toFixed(1)} s`);
    }
    console.log(`${treeSummary.files} files, ${mib(treeSummary.bytes)} MiB; ${runs} runs on ${machine.cpus} CPUs${nodeFlags.length ? `; agent node flags ${nodeFlags.join(' ')}` : ''}`);

    const iterations: Iteration[] = [];
    for (let run = 1; run <= runs; run += 1) {
      // Odd runs: baseline → agent, embedded then nats; even runs: the mirror image, so drift hits every side.
      const order = run % 2 === 1 ? 'baseline-first' : 'agent-first';
      const storeRuns: StoreRun[] = [];
      if (order === 'baseline-first') {
        for (const target of targets) storeRuns.push(await runStore(target, root, run, false, nodeFlags, sourceCensus));
      } else {
        for (const target of [...targets].reverse()) storeRuns.unshift(await runStore(target, root, run, true, nodeFlags, sourceCensus));
      }
      iterations.push({ run, order, stores: storeRuns });
    }

    const summaries: Partial<Record<StoreBackend, Summary>> = {};
    for (const store of stores) {
      summaries[store] = summarize(iterations.map((it) => it.stores.find((r) => r.store === store)!), totalBytes);
      report(store, iterations, summaries[store]);
    }
    let ratios: { agent: string; baseline: string; download: string; enroll: string } | undefined;
    if (summaries.sqlite && summaries.nats) {
      const e = summaries.sqlite;
      const n = summaries.nats;
      ratios = {
        agent: ratio(n.agentSeconds, e.agentSeconds), baseline: ratio(n.baselineSeconds, e.baselineSeconds),
        download: ratio(n.phases.downloading, e.phases.downloading), enroll: ratio(n.phases.startToEnrolled, e.phases.startToEnrolled),
      };
      const s = (seconds: number): string => `${seconds.toFixed(2)} s`;
      console.log(`\n${table([
        ['median', 'embedded', 'nats', 'nats / embedded'],
        ['strata agent --once', s(e.agentSeconds), s(n.agentSeconds), ratios.agent],
        ['baseline curl | tar -xz (from that server)', s(e.baselineSeconds), s(n.baselineSeconds), ratios.baseline],
        ['agent: spawn → enrolled', s(e.phases.startToEnrolled), s(n.phases.startToEnrolled), ratios.enroll],
        ['agent: download + verify', s(e.phases.downloading), s(n.phases.downloading), ratios.download],
      ])}`);
    }
    const date = new Date().toISOString().slice(0, 10);
    const outDir = path.join(ROOT, 'bench/out');
    mkdirSync(outDir, { recursive: true });
    const suffix = stores.length === 1 && stores[0] === 'sqlite' ? '' : `-${stores.join('-')}`;
    const outFile = path.join(outDir, `apply-${date}${suffix}${nodeFlags.length ? '-flags' : ''}.json`);
    writeFileSync(outFile, `${JSON.stringify({
      benchmark: 'apply', date: new Date().toISOString(), machine, tree: treeSummary, blob: pushed, baselineScript: BASELINE_SCRIPT, nodeFlags, stores,
      targets: { ratio: TARGET_RATIO }, summaries, ratios, iterations,
    }, null, 2)}\n`);
    console.log(`\nwrote ${path.relative(ROOT, outFile)}`);
  } finally {
    await close();
  }
}

await main();
