/**
 * Ingest benchmark: `strata push` of a generated 512 MiB tree against `tar -cz … | sha256sum` on
 * the same tree in the same run, with the server's and the CLI's peak memory during each push.
 * Targets: push within 1.3× of the baseline's time, server RSS under 150 MB. Results in
 * docs/benchmarks.md; run with `npm run bench:ingest [-- --runs N]`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, ROOT, startServer, type TestServer } from '../test/helpers/strata-server.ts';
import { describeMachine } from './lib/machine.ts';
import { readProc, resetPeakRss, running, runTimed, sampleProc } from './lib/proc.ts';
import { median, mib, table } from './lib/stats.ts';
import { generateTree, INGEST_TREE, type TreeSummary } from './lib/tree.ts';
import { onInterrupt } from './lib/interrupt.ts';

const TARGET_RATIO = 1.3;
const TARGET_SERVER_RSS = 150 * 1000 * 1000;
/**
 * The baseline as one fixed script; the tree's path is its positional argument, never part of the
 * script. bash wires the pipe between tar and sha256sum: handing one child's stdout to another
 * through node can lose data (nodejs/node#9413), and copying it through this process would charge
 * the baseline for our own event loop. tar -z runs `gzip` at its default level, 6, as push does.
 */
const BASELINE_SCRIPT = 'set -o pipefail; tar -cz -C "$1" . | sha256sum';
/** Written at the tree's root with a per-run value, so each run's first push is a new blob. */
const NONCE_FILE = 'strata-bench-run.txt';

/** One timed baseline pipeline. */
interface BaselineRun {
  seconds: number;
  sha256: string;
}

/** One timed `strata push`, with the memory and CPU of both processes during it. */
interface PushRun {
  version: string;
  seconds: number;
  blob: string;
  compressedBytes: number;
  entries: number;
  /** True when the server already held the blob (the bytes were still sent, hashed and inspected). */
  dedup: boolean;
  serverPeakRss: number;
  serverCpuSeconds: number;
  cliPeakRss: number;
  cliCpuSeconds: number;
}

/** One iteration: the baseline, a push of a new blob, and a push of the same bytes again. */
interface Iteration {
  run: number;
  order: 'baseline-first' | 'push-first';
  baseline: BaselineRun;
  pushNew: PushRun;
  pushDedup: PushRun;
}

/** Parses `--runs N` and `--size-mib M` (a smaller tree, for trying the benchmark out). */
function parseOptions(): { runs: number; totalBytes: number } {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'size-mib': { type: 'string', default: String(INGEST_TREE.totalBytes / 1024 / 1024) } } });
  const runs = Number(values.runs);
  const sizeMib = Number(values['size-mib']);
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error(`--runs must be 1 to 20, not ${JSON.stringify(values.runs)}`);
  if (!Number.isInteger(sizeMib) || sizeMib < 128) throw new Error(`--size-mib must be an integer of at least 128, not ${JSON.stringify(values['size-mib'])}`);
  return { runs, totalBytes: sizeMib * 1024 * 1024 };
}

/** Times `tar -cz -C tree . | sha256sum`. */
async function runBaseline(tree: string): Promise<BaselineRun> {
  const run = await runTimed('bash', ['-c', BASELINE_SCRIPT, 'bench-ingest', tree]);
  if (run.code !== 0) throw new Error(`baseline failed with ${run.code ?? run.signal}: ${run.stderr}`);
  return { seconds: run.seconds, sha256: run.stdout.split(' ')[0]! };
}

/** Times one `strata push` of `tree` as a new version, sampling the server and the CLI. */
async function runPush(server: TestServer, tree: string, version: string, knownBlobs: Set<string>): Promise<PushRun> {
  const serverPid = server.process.pid!;
  // With the high-water mark reset, VmHWM afterwards is this push's exact peak, not just the
  // highest 100 ms sample; without it (old kernel), the samples are all there is.
  const exactPeak = resetPeakRss(serverPid);
  const serverSampler = sampleProc(serverPid);
  const run = await runTimed(process.execPath, [CLI, 'push', tree, '--name', 'bench', '--version', version, '--json'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...server.env },
  });
  const serverPeaks = serverSampler.stop();
  if (run.code !== 0) throw new Error(`strata push ${version} failed with ${run.code ?? run.signal}: ${run.stderr}\nserver log tail:\n${server.logs().slice(-4000)}`);
  const result = JSON.parse(run.stdout) as { blob: string; size: number; archive: { entries: number } };
  const dedup = knownBlobs.has(result.blob);
  knownBlobs.add(result.blob);
  return {
    version,
    seconds: run.seconds,
    blob: result.blob,
    compressedBytes: result.size,
    entries: result.archive.entries,
    dedup,
    serverPeakRss: exactPeak ? Math.max(serverPeaks.hwm, serverPeaks.sampledRss) : serverPeaks.sampledRss,
    serverCpuSeconds: serverPeaks.cpu,
    // VmHWM covers the CLI's whole life up to its last sample, so it is never below a sample.
    cliPeakRss: Math.max(run.peaks.hwm, run.peaks.sampledRss),
    cliCpuSeconds: run.peaks.cpu,
  };
}

/** Runs one iteration; the order alternates so slow drift of a shared machine hits both sides. */
async function runIteration(server: TestServer, tree: string, run: number, knownBlobs: Set<string>): Promise<Iteration> {
  writeFileSync(path.join(tree, NONCE_FILE), `run ${run}\n`);
  const order = run % 2 === 1 ? 'baseline-first' : 'push-first';
  const pushes = async (): Promise<[PushRun, PushRun]> => [await runPush(server, tree, `v${run}`, knownBlobs), await runPush(server, tree, `v${run}-again`, knownBlobs)];
  if (order === 'baseline-first') {
    const baseline = await runBaseline(tree);
    const [pushNew, pushDedup] = await pushes();
    return { run, order, baseline, pushNew, pushDedup };
  }
  const [pushNew, pushDedup] = await pushes();
  const baseline = await runBaseline(tree);
  return { run, order, baseline, pushNew, pushDedup };
}

/** The medians and maxima the report states. */
function summarize(iterations: Iteration[], tree: TreeSummary) {
  const baseline = median(iterations.map((it) => it.baseline.seconds));
  const pushNew = median(iterations.map((it) => it.pushNew.seconds));
  const pushDedup = median(iterations.map((it) => it.pushDedup.seconds));
  const pushes = iterations.flatMap((it) => [it.pushNew, it.pushDedup]);
  const serverPeaks = pushes.map((push) => push.serverPeakRss);
  return {
    baselineSeconds: baseline,
    pushNewSeconds: pushNew,
    pushDedupSeconds: pushDedup,
    ratioNew: pushNew / baseline,
    ratioDedup: pushDedup / baseline,
    baselineMiBps: tree.bytes / 1024 / 1024 / baseline,
    pushNewMiBps: tree.bytes / 1024 / 1024 / pushNew,
    serverPeakRssMedian: median(serverPeaks),
    serverPeakRssMax: Math.max(...serverPeaks),
    cliPeakRssMedian: median(pushes.map((push) => push.cliPeakRss)),
    cliPeakRssMax: Math.max(...pushes.map((push) => push.cliPeakRss)),
    serverCpuSecondsMedian: median(iterations.map((it) => it.pushNew.serverCpuSeconds)),
    cliCpuSecondsMedian: median(iterations.map((it) => it.pushNew.cliCpuSeconds)),
    compressedBytes: iterations[0]!.pushNew.compressedBytes,
    meetsTimeTarget: pushNew / baseline <= TARGET_RATIO,
    meetsRssTarget: Math.max(...serverPeaks) < TARGET_SERVER_RSS,
  };
}

/** Prints the per-run figures and the summary. */
function report(iterations: Iteration[], summary: ReturnType<typeof summarize>, idleServerRss: number): void {
  const s = (seconds: number): string => `${seconds.toFixed(2)} s`;
  const rows = [['run', 'order', 'baseline', 'push (new)', 'push (dedup)', 'server peak RSS', 'CLI peak RSS', 'server CPU', 'CLI CPU']];
  for (const it of iterations) {
    rows.push([
      String(it.run), it.order, s(it.baseline.seconds), s(it.pushNew.seconds), s(it.pushDedup.seconds),
      `${mib(it.pushNew.serverPeakRss)} / ${mib(it.pushDedup.serverPeakRss)} MiB`,
      `${mib(it.pushNew.cliPeakRss)} / ${mib(it.pushDedup.cliPeakRss)} MiB`,
      s(it.pushNew.serverCpuSeconds), s(it.pushNew.cliCpuSeconds),
    ]);
  }
  console.log(`\n${table(rows)}\n`);
  console.log(table([
    ['', 'median', 'target'],
    ['baseline tar -cz | sha256sum', `${s(summary.baselineSeconds)} (${summary.baselineMiBps.toFixed(1)} MiB/s)`, ''],
    ['strata push, new blob', `${s(summary.pushNewSeconds)} (${summary.pushNewMiBps.toFixed(1)} MiB/s)`, ''],
    ['strata push, same bytes again', s(summary.pushDedupSeconds), ''],
    ['ratio push/baseline (new blob)', `${summary.ratioNew.toFixed(2)}×`, `≤ ${TARGET_RATIO}× ${summary.meetsTimeTarget ? 'met' : 'MISSED'}`],
    ['ratio push/baseline (dedup)', `${summary.ratioDedup.toFixed(2)}×`, ''],
    ['server peak RSS (median / max)', `${mib(summary.serverPeakRssMedian)} / ${mib(summary.serverPeakRssMax)} MiB`, `< 150 MB (${mib(TARGET_SERVER_RSS)} MiB) ${summary.meetsRssTarget ? 'met' : 'MISSED'}`],
    ['server RSS idle before the runs', `${mib(idleServerRss)} MiB`, ''],
    ['CLI peak RSS (median / max)', `${mib(summary.cliPeakRssMedian)} / ${mib(summary.cliPeakRssMax)} MiB`, ''],
    ['CPU during a new-blob push (server / CLI)', `${s(summary.serverCpuSecondsMedian)} / ${s(summary.cliCpuSecondsMedian)}`, ''],
  ]));
}

/** Generates the tree, starts the server, runs the iterations, reports, and cleans up. */
async function main(): Promise<void> {
  const { runs, totalBytes } = parseOptions();
  const machine = describeMachine();
  const root = mkdtempSync(path.join(os.tmpdir(), 'strata-bench-ingest-'));
  let server: TestServer | undefined;
  onInterrupt(`removed ${root}`, () => {
    for (const child of running) child.kill('SIGKILL');
    server?.process.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });
  try {
    const tree = path.join(root, 'tree');
    mkdirSync(tree);
    console.log(`generating ${mib(totalBytes)} MiB tree in ${tree} …`);
    const generationStart = performance.now();
    // A smaller tree for trying things out keeps the same proportions of small, medium and large.
    const scale = totalBytes / INGEST_TREE.totalBytes;
    const treeSummary = generateTree(tree, {
      ...INGEST_TREE, totalBytes,
      smallFiles: Math.round(INGEST_TREE.smallFiles * scale), largeFiles: Math.max(1, Math.round(INGEST_TREE.largeFiles * scale)),
    });
    console.log(`${treeSummary.files} files (${treeSummary.small.files} small, ${treeSummary.medium.files} medium, ${treeSummary.large.files} large), ${treeSummary.directories} directories, ${mib(treeSummary.textBytes)} MiB text + ${mib(treeSummary.randomBytes)} MiB random, in ${((performance.now() - generationStart) / 1000).toFixed(1)} s`);
    server = await startServer(path.join(root, 'data'));
    const idleServerRss = readProc(server.process.pid!)?.rss ?? 0;
    console.log(`server ${server.url} (pid ${server.process.pid}), idle RSS ${mib(idleServerRss)} MiB; ${runs} runs on ${machine.cpus} CPUs`);
    const iterations: Iteration[] = [];
    const knownBlobs = new Set<string>();
    for (let run = 1; run <= runs; run += 1) {
      const iteration = await runIteration(server, tree, run, knownBlobs);
      iterations.push(iteration);
      console.log(`run ${run}: baseline ${iteration.baseline.seconds.toFixed(2)} s, push ${iteration.pushNew.seconds.toFixed(2)} s (new) / ${iteration.pushDedup.seconds.toFixed(2)} s (dedup), server peak ${mib(iteration.pushNew.serverPeakRss)} MiB`);
      if (iteration.pushNew.dedup || !iteration.pushDedup.dedup) throw new Error(`run ${run}: expected a new blob then a duplicate, got ${iteration.pushNew.blob} then ${iteration.pushDedup.blob}`);
    }
    const summary = summarize(iterations, treeSummary);
    report(iterations, summary, idleServerRss);
    const date = new Date().toISOString().slice(0, 10);
    const outDir = path.join(ROOT, 'bench/out');
    mkdirSync(outDir, { recursive: true });
    const outFile = path.join(outDir, `ingest-${date}.json`);
    writeFileSync(outFile, `${JSON.stringify({
      benchmark: 'ingest', date: new Date().toISOString(), machine, tree: treeSummary, baselineScript: BASELINE_SCRIPT,
      targets: { ratio: TARGET_RATIO, serverRssBytes: TARGET_SERVER_RSS }, idleServerRss, summary, iterations,
    }, null, 2)}\n`);
    console.log(`\nwrote ${path.relative(ROOT, outFile)}`);
  } finally {
    await server?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
