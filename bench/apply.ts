/**
 * Apply benchmark: one agent fetching, verifying and unpacking a 512 MiB configuration from a
 * local server (`strata agent --once` in a fresh directory, enrollment included), against
 * `curl -s URL | tar -xz` of the same archive in the same run. Target: within 1.3× of the
 * baseline. Results in docs/benchmarks.md; run with `npm run bench:apply [-- --runs N]`.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, startServer, type TestServer } from '../test/helpers/strata-server.ts';
import { applyOnce, type ApplyRun } from './lib/agent-apply.ts';
import { describeMachine } from './lib/machine.ts';
import { running, runTimed } from './lib/proc.ts';
import { median, mib, table } from './lib/stats.ts';
import { caFile, census, scaledIngestTree, strataJson, type TreeCensus } from './lib/strata.ts';
import { generateTree, INGEST_TREE } from './lib/tree.ts';
import { onInterrupt } from './lib/interrupt.ts';

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

interface Iteration {
  run: number;
  order: 'baseline-first' | 'agent-first';
  baseline: BaselineRun;
  agent: ApplyRun;
}

function parseOptions(): { runs: number; totalBytes: number; nodeFlags: string[] } {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      'size-mib': { type: 'string', default: String(INGEST_TREE.totalBytes / 1024 / 1024) },
      'node-flags': { type: 'string', default: '' },
    },
  });
  const runs = Number(values.runs);
  const sizeMib = Number(values['size-mib']);
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error(`--runs must be 1 to 20, not ${JSON.stringify(values.runs)}`);
  if (!Number.isInteger(sizeMib) || sizeMib < 16 || sizeMib > 4096) throw new Error(`--size-mib must be an integer from 16 to 4096, not ${JSON.stringify(values['size-mib'])}`);
  const nodeFlags = values['node-flags'].split(/\s+/).filter(Boolean);
  for (const flag of nodeFlags) if (!/^--[a-z0-9-]+(=[A-Za-z0-9._-]+)?$/.test(flag)) throw new Error(`--node-flags: ${JSON.stringify(flag)} is not a node flag`);
  return { runs, totalBytes: sizeMib * 1024 * 1024, nodeFlags };
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

function sameTree(a: TreeCensus, b: TreeCensus): boolean {
  return a.files === b.files && a.bytes === b.bytes && a.directories === b.directories && a.symlinks === b.symlinks;
}

async function main(): Promise<void> {
  const { runs, totalBytes, nodeFlags } = parseOptions();
  if (!existsSync(CURL)) throw new Error(`${CURL} is missing: the apply baseline needs curl (apt-get install curl)`);
  const machine = describeMachine();
  const root = mkdtempSync(path.join(os.tmpdir(), 'strata-bench-apply-'));
  let server: TestServer | undefined;
  onInterrupt(`removed ${root}`, () => {
    for (const child of running) child.kill('SIGKILL');
    server?.process.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });
  try {
    const source = path.join(root, 'tree');
    mkdirSync(source);
    console.log(`generating ${mib(totalBytes)} MiB tree in ${source} …`);
    const treeSummary = generateTree(source, scaledIngestTree(totalBytes));
    const sourceCensus = await census(source);
    server = await startServer(path.join(root, 'data'));
    const joinToken = readFileSync(path.join(server.dataDir, 'join-token'), 'utf8').trim();
    const { result: pushed, run: pushRun } = await strataJson<{ blob: string; size: number; archive: { entries: number } }>(server, ['push', source, '--name', CONFIGURATION, '--version', 'v1']);
    await strataJson(server, ['addconf', '--name', CONFIGURATION, '--layer', `${CONFIGURATION}:v1`]);
    // The source tree is no longer needed: free its page cache and disk before the timed runs.
    rmSync(source, { recursive: true, force: true });
    console.log(`${treeSummary.files} files, ${mib(treeSummary.bytes)} MiB; pushed as blob ${pushed.blob.slice(0, 12)} (${mib(pushed.size)} MiB, ${pushed.archive.entries} entries) in ${pushRun.seconds.toFixed(1)} s; server ${server.url}; ${runs} runs on ${machine.cpus} CPUs${nodeFlags.length ? `; agent node flags ${nodeFlags.join(' ')}` : ''}`);

    const iterations: Iteration[] = [];
    for (let run = 1; run <= runs; run += 1) {
      const order = run % 2 === 1 ? 'baseline-first' : 'agent-first';
      const baselineDir = path.join(root, `baseline-${run}`);
      const agentDir = path.join(root, `agent-${run}`);
      let baseline: BaselineRun;
      let agent: ApplyRun;
      if (order === 'baseline-first') {
        baseline = await runBaseline(server, pushed.blob, baselineDir);
        agent = await runAgent(server, joinToken, agentDir, `bench-${run}`, nodeFlags);
      } else {
        agent = await runAgent(server, joinToken, agentDir, `bench-${run}`, nodeFlags);
        baseline = await runBaseline(server, pushed.blob, baselineDir);
      }
      if (!sameTree(baseline.tree, sourceCensus)) throw new Error(`run ${run}: the baseline unpacked ${JSON.stringify(baseline.tree)}, the source was ${JSON.stringify(sourceCensus)}`);
      if (!sameTree(agent.tree, baseline.tree)) throw new Error(`run ${run}: the agent deployed ${JSON.stringify(agent.tree)}, the baseline unpacked ${JSON.stringify(baseline.tree)}`);
      iterations.push({ run, order, baseline, agent });
      const p = agent.phases;
      console.log(`run ${run}: baseline ${baseline.seconds.toFixed(2)} s, agent ${agent.seconds.toFixed(2)} s (enrolled ${p.enrolled?.toFixed(2)} s, download from ${p.downloading?.toFixed(2)} s, unpack from ${p.unpacking?.toFixed(2)} s, deployed at ${p.deployed?.toFixed(2)} s), agent peak RSS ${mib(agent.peakRss)} MiB; trees identical (${agent.tree.files} files, ${agent.tree.bytes} bytes)`);
      rmSync(baselineDir, { recursive: true, force: true });
      rmSync(agentDir, { recursive: true, force: true });
    }

    const agentSeconds = median(iterations.map((it) => it.agent.seconds));
    const baselineSeconds = median(iterations.map((it) => it.baseline.seconds));
    const phase = (from: keyof ApplyRun['phases'] | 'start', to: keyof ApplyRun['phases'] | 'exit'): number => median(iterations.map((it) => {
      const at = (name: typeof from | typeof to): number => (name === 'start' ? 0 : name === 'exit' ? it.agent.seconds : it.agent.phases[name] ?? Number.NaN);
      return at(to) - at(from);
    }));
    const summary = {
      baselineSeconds, agentSeconds, ratio: agentSeconds / baselineSeconds, meetsTarget: agentSeconds / baselineSeconds <= TARGET_RATIO,
      baselineMiBps: totalBytes / 1024 / 1024 / baselineSeconds, agentMiBps: totalBytes / 1024 / 1024 / agentSeconds,
      agentPeakRssMedian: median(iterations.map((it) => it.agent.peakRss)), agentPeakRssMax: Math.max(...iterations.map((it) => it.agent.peakRss)),
      agentCpuSecondsMedian: median(iterations.map((it) => it.agent.cpuSeconds)),
      phases: {
        startToEnrolled: phase('start', 'enrolled'), enrolledToDownloading: phase('enrolled', 'downloading'), downloading: phase('downloading', 'unpacking'),
        unpackingToDeployed: phase('unpacking', 'deployed'), deployedToExit: phase('deployed', 'exit'),
      },
    };
    const s = (seconds: number): string => `${seconds.toFixed(2)} s`;
    const rows = [['run', 'order', 'baseline', 'agent', 'enroll', 'download+verify', 'unpack+fsync+switch', 'agent peak RSS', 'agent CPU']];
    for (const it of iterations) {
      const p = it.agent.phases;
      rows.push([String(it.run), it.order, s(it.baseline.seconds), s(it.agent.seconds), s(p.enrolled ?? Number.NaN), s((p.unpacking ?? Number.NaN) - (p.downloading ?? Number.NaN)), s((p.deployed ?? Number.NaN) - (p.unpacking ?? Number.NaN)), `${mib(it.agent.peakRss)} MiB`, s(it.agent.cpuSeconds)]);
    }
    console.log(`\n${table(rows)}\n`);
    console.log(table([
      ['', 'median', 'target'],
      ['baseline curl | tar -xz', `${s(baselineSeconds)} (${summary.baselineMiBps.toFixed(1)} MiB/s)`, ''],
      ['strata agent --once', `${s(agentSeconds)} (${summary.agentMiBps.toFixed(1)} MiB/s)`, ''],
      ['ratio agent/baseline', `${summary.ratio.toFixed(2)}×`, `≤ ${TARGET_RATIO}× ${summary.meetsTarget ? 'met' : 'MISSED'}`],
      ['  spawn → enrolled', s(summary.phases.startToEnrolled), ''],
      ['  enrolled → downloading', s(summary.phases.enrolledToDownloading), ''],
      ['  download + verify', s(summary.phases.downloading), ''],
      ['  unpack + fsync + switch', s(summary.phases.unpackingToDeployed), ''],
      ['  deployed → exit', s(summary.phases.deployedToExit), ''],
      ['agent peak RSS (median / max)', `${mib(summary.agentPeakRssMedian)} / ${mib(summary.agentPeakRssMax)} MiB`, ''],
      ['agent CPU', s(summary.agentCpuSecondsMedian), ''],
    ]));
    const date = new Date().toISOString().slice(0, 10);
    const outDir = path.join(ROOT, 'bench/out');
    mkdirSync(outDir, { recursive: true });
    const outFile = path.join(outDir, `apply-${date}${nodeFlags.length ? '-flags' : ''}.json`);
    writeFileSync(outFile, `${JSON.stringify({
      benchmark: 'apply', date: new Date().toISOString(), machine, tree: treeSummary, blob: pushed, baselineScript: BASELINE_SCRIPT, nodeFlags,
      targets: { ratio: TARGET_RATIO }, summary, iterations,
    }, null, 2)}\n`);
    console.log(`\nwrote ${path.relative(ROOT, outFile)}`);
  } finally {
    await server?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
