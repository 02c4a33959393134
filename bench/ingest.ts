/**
 * Ingest benchmark: `strata push` of a generated 512 MiB tree against `tar -cz … | sha256sum` on
 * the same tree in the same run, with the server's and the CLI's peak memory during each push.
 * Targets: push within 1.3× of the baseline's time, server RSS under 150 MB. `--store both` pushes
 * to an embedded server and to a NATS JetStream one in the same runs (and reports nats/embedded).
 * Results in docs/benchmarks.md; run with `npm run bench:ingest [-- --runs N --store both]`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, ROOT, type StoreBackend, type TestServer } from '../test/helpers/strata-server.ts';
import { benchWorkspace, parseStores, ratio, startBackend, storeLabel, STORE_OPTION, type Backend } from './lib/backend.ts';
import { describeMachine } from './lib/machine.ts';
import { readProc, resetPeakRss, runTimed, sampleProc } from './lib/proc.ts';
import { median, mib, table } from './lib/stats.ts';
import { generateTree, INGEST_TREE, type TreeSummary } from './lib/tree.ts';

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
  /** With NATS: the nats-server's peak RSS (VmHWM reset before the push) and CPU during it. */
  natsPeakRss?: number;
  natsCpuSeconds?: number;
}

/** Both pushes of one run to one backend. */
interface StorePushes {
  store: StoreBackend;
  pushNew: PushRun;
  pushDedup: PushRun;
}

/** One iteration: the baseline, then per backend a push of a new blob and a push of the same bytes again. */
interface Iteration {
  run: number;
  order: 'baseline-first' | 'push-first';
  baseline: BaselineRun;
  stores: StorePushes[];
}

/** Parses `--runs N`, `--size-mib M` (a smaller tree, for trying the benchmark out) and `--store`. */
function parseOptions(): { runs: number; totalBytes: number; stores: StoreBackend[] } {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'size-mib': { type: 'string', default: String(INGEST_TREE.totalBytes / 1024 / 1024) }, ...STORE_OPTION } });
  const runs = Number(values.runs);
  const sizeMib = Number(values['size-mib']);
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error(`--runs must be 1 to 20, not ${JSON.stringify(values.runs)}`);
  if (!Number.isInteger(sizeMib) || sizeMib < 128) throw new Error(`--size-mib must be an integer of at least 128, not ${JSON.stringify(values['size-mib'])}`);
  return { runs, totalBytes: sizeMib * 1024 * 1024, stores: parseStores(values.store) };
}

/** Times `tar -cz -C tree . | sha256sum`. */
async function runBaseline(tree: string): Promise<BaselineRun> {
  const run = await runTimed('bash', ['-c', BASELINE_SCRIPT, 'bench-ingest', tree]);
  if (run.code !== 0) throw new Error(`baseline failed with ${run.code ?? run.signal}: ${run.stderr}`);
  return { seconds: run.seconds, sha256: run.stdout.split(' ')[0]! };
}

/** Times one `strata push` of `tree` as a new version, sampling the server and the CLI. */
async function runPush(backend: Backend, tree: string, version: string, knownBlobs: Set<string>): Promise<PushRun> {
  const server: TestServer = backend.servers[0]!;
  const serverPid = server.process.pid!;
  // With the high-water mark reset, VmHWM afterwards is this push's exact peak, not just the
  // highest 100 ms sample; without it (old kernel), the samples are all there is.
  const exactPeak = resetPeakRss(serverPid);
  const serverSampler = sampleProc(serverPid);
  const natsPid = backend.natsPid();
  if (natsPid !== undefined) resetPeakRss(natsPid);
  const natsSampler = natsPid === undefined ? undefined : sampleProc(natsPid);
  const run = await runTimed(process.execPath, [CLI, 'push', tree, '--name', 'bench', '--version', version, '--json'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...server.env },
  });
  const serverPeaks = serverSampler.stop();
  const natsPeaks = natsSampler?.stop();
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
    ...(natsPeaks ? { natsPeakRss: Math.max(natsPeaks.hwm, natsPeaks.sampledRss), natsCpuSeconds: natsPeaks.cpu } : {}),
  };
}

/**
 * Runs one iteration; the order alternates so slow drift of a shared machine hits every side:
 * odd runs baseline → embedded → nats, even runs nats → embedded → baseline.
 */
async function runIteration(backends: Backend[], tree: string, run: number, knownBlobs: Map<StoreBackend, Set<string>>): Promise<Iteration> {
  writeFileSync(path.join(tree, NONCE_FILE), `run ${run}\n`);
  const order = run % 2 === 1 ? 'baseline-first' : 'push-first';
  const pushes = async (backend: Backend): Promise<StorePushes> => {
    const known = knownBlobs.get(backend.store) ?? new Set<string>();
    knownBlobs.set(backend.store, known);
    return { store: backend.store, pushNew: await runPush(backend, tree, `v${run}`, known), pushDedup: await runPush(backend, tree, `v${run}-again`, known) };
  };
  const stores: StorePushes[] = [];
  if (order === 'baseline-first') {
    const baseline = await runBaseline(tree);
    for (const backend of backends) stores.push(await pushes(backend));
    return { run, order, baseline, stores };
  }
  for (const backend of [...backends].reverse()) stores.unshift(await pushes(backend));
  const baseline = await runBaseline(tree);
  return { run, order, baseline, stores };
}

/** The pushes of every iteration to one backend. */
function pushesTo(iterations: Iteration[], store: StoreBackend): { baseline: BaselineRun; pushNew: PushRun; pushDedup: PushRun }[] {
  return iterations.map((it) => ({ baseline: it.baseline, ...it.stores.find((s) => s.store === store)! }));
}

/** The medians and maxima the report states, for one backend. */
function summarize(iterations: { baseline: BaselineRun; pushNew: PushRun; pushDedup: PushRun }[], tree: TreeSummary) {
  const baseline = median(iterations.map((it) => it.baseline.seconds));
  const pushNew = median(iterations.map((it) => it.pushNew.seconds));
  const pushDedup = median(iterations.map((it) => it.pushDedup.seconds));
  const pushes = iterations.flatMap((it) => [it.pushNew, it.pushDedup]);
  const serverPeaks = pushes.map((push) => push.serverPeakRss);
  const natsPeaks = pushes.flatMap((push) => (push.natsPeakRss === undefined ? [] : [push.natsPeakRss]));
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
    ...(natsPeaks.length > 0 ? {
      natsPeakRssMedian: median(natsPeaks), natsPeakRssMax: Math.max(...natsPeaks),
      natsCpuSecondsMedian: median(iterations.map((it) => it.pushNew.natsCpuSeconds ?? Number.NaN)),
    } : {}),
    compressedBytes: iterations[0]!.pushNew.compressedBytes,
    meetsTimeTarget: pushNew / baseline <= TARGET_RATIO,
    meetsRssTarget: Math.max(...serverPeaks) < TARGET_SERVER_RSS,
  };
}

type Summary = ReturnType<typeof summarize>;

/** Prints one backend's per-run figures and summary. */
function report(store: StoreBackend, iterations: { run: number; order: string; baseline: BaselineRun; pushNew: PushRun; pushDedup: PushRun }[], summary: Summary, idleServerRss: number): void {
  const s = (seconds: number): string => `${seconds.toFixed(2)} s`;
  const rows = [['run', 'order', 'baseline', 'push (new)', 'push (dedup)', 'server peak RSS', 'CLI peak RSS', 'server CPU', 'CLI CPU', ...(store === 'nats' ? ['nats-server peak RSS', 'nats-server CPU'] : [])]];
  for (const it of iterations) {
    rows.push([
      String(it.run), it.order, s(it.baseline.seconds), s(it.pushNew.seconds), s(it.pushDedup.seconds),
      `${mib(it.pushNew.serverPeakRss)} / ${mib(it.pushDedup.serverPeakRss)} MiB`,
      `${mib(it.pushNew.cliPeakRss)} / ${mib(it.pushDedup.cliPeakRss)} MiB`,
      s(it.pushNew.serverCpuSeconds), s(it.pushNew.cliCpuSeconds),
      ...(store === 'nats' ? [`${mib(it.pushNew.natsPeakRss ?? 0)} / ${mib(it.pushDedup.natsPeakRss ?? 0)} MiB`, s(it.pushNew.natsCpuSeconds ?? Number.NaN)] : []),
    ]);
  }
  console.log(`\n== ${storeLabel(store)} store ==\n${table(rows)}\n`);
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
    ...(summary.natsPeakRssMedian === undefined ? [] : [
      ['nats-server peak RSS during a push (median / max)', `${mib(summary.natsPeakRssMedian)} / ${mib(summary.natsPeakRssMax ?? 0)} MiB`, ''],
      ['nats-server CPU during a new-blob push', s(summary.natsCpuSecondsMedian ?? Number.NaN), ''],
    ]),
  ]));
}

/** Prints nats/embedded of the medians when both backends ran. */
function reportRatios(summaries: Partial<Record<StoreBackend, Summary>>): Record<string, string> | undefined {
  const embedded = summaries.sqlite;
  const nats = summaries.nats;
  if (!embedded || !nats) return undefined;
  const ratios = {
    pushNew: ratio(nats.pushNewSeconds, embedded.pushNewSeconds),
    pushDedup: ratio(nats.pushDedupSeconds, embedded.pushDedupSeconds),
    serverPeakRss: ratio(nats.serverPeakRssMedian, embedded.serverPeakRssMedian),
    serverCpu: ratio(nats.serverCpuSecondsMedian, embedded.serverCpuSecondsMedian),
  };
  console.log(`\n${table([
    ['median', 'embedded', 'nats', 'nats / embedded'],
    ['push, new blob', `${embedded.pushNewSeconds.toFixed(2)} s`, `${nats.pushNewSeconds.toFixed(2)} s`, ratios.pushNew],
    ['push, dedup', `${embedded.pushDedupSeconds.toFixed(2)} s`, `${nats.pushDedupSeconds.toFixed(2)} s`, ratios.pushDedup],
    ['server peak RSS', `${mib(embedded.serverPeakRssMedian)} MiB`, `${mib(nats.serverPeakRssMedian)} MiB (+ nats-server ${mib(nats.natsPeakRssMedian ?? 0)} MiB)`, ratios.serverPeakRss],
    ['server CPU, new blob', `${embedded.serverCpuSecondsMedian.toFixed(2)} s`, `${nats.serverCpuSecondsMedian.toFixed(2)} s (+ nats-server ${(nats.natsCpuSecondsMedian ?? Number.NaN).toFixed(2)} s)`, ratios.serverCpu],
  ])}`);
  return ratios;
}

/** Generates the tree, starts the server(s), runs the iterations, reports, and cleans up. */
async function main(): Promise<void> {
  const { runs, totalBytes, stores } = parseOptions();
  const machine = describeMachine();
  const { root, backends, close } = benchWorkspace('strata-bench-ingest-');
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
    const idleServerRss: Partial<Record<StoreBackend, number>> = {};
    for (const store of stores) {
      const backend = await startBackend(root, store);
      backends.push(backend);
      const server = backend.servers[0]!;
      idleServerRss[store] = readProc(server.process.pid!)?.rss ?? 0;
      const nats = backend.readNats();
      console.log(`${storeLabel(store)} server ${server.url} (pid ${server.process.pid}), idle RSS ${mib(idleServerRss[store])} MiB${nats ? `; nats-server pid ${backend.natsPid()}, RSS ${mib(nats.rss)} MiB` : ''}`);
    }
    console.log(`${runs} runs on ${machine.cpus} CPUs`);
    const iterations: Iteration[] = [];
    const knownBlobs = new Map<StoreBackend, Set<string>>();
    for (let run = 1; run <= runs; run += 1) {
      const iteration = await runIteration(backends, tree, run, knownBlobs);
      iterations.push(iteration);
      const pushes = iteration.stores.map((p) => `${storeLabel(p.store)} push ${p.pushNew.seconds.toFixed(2)} s (new) / ${p.pushDedup.seconds.toFixed(2)} s (dedup), server peak ${mib(p.pushNew.serverPeakRss)} MiB`);
      console.log(`run ${run}: baseline ${iteration.baseline.seconds.toFixed(2)} s; ${pushes.join('; ')}`);
      for (const p of iteration.stores) {
        if (p.pushNew.dedup || !p.pushDedup.dedup) throw new Error(`run ${run} (${p.store}): expected a new blob then a duplicate, got ${p.pushNew.blob} then ${p.pushDedup.blob}`);
      }
    }
    const summaries: Partial<Record<StoreBackend, Summary>> = {};
    for (const store of stores) {
      const perStore = pushesTo(iterations, store).map((p, index) => ({ ...p, run: iterations[index]!.run, order: iterations[index]!.order }));
      summaries[store] = summarize(perStore, treeSummary);
      report(store, perStore, summaries[store], idleServerRss[store] ?? 0);
    }
    const ratios = reportRatios(summaries);
    const date = new Date().toISOString().slice(0, 10);
    const outDir = path.join(ROOT, 'bench/out');
    mkdirSync(outDir, { recursive: true });
    // A run on NATS (or both) must not overwrite the embedded store's results.
    const suffix = stores.length === 1 && stores[0] === 'sqlite' ? '' : `-${stores.join('-')}`;
    const outFile = path.join(outDir, `ingest-${date}${suffix}.json`);
    writeFileSync(outFile, `${JSON.stringify({
      benchmark: 'ingest', date: new Date().toISOString(), machine, tree: treeSummary, baselineScript: BASELINE_SCRIPT, stores,
      targets: { ratio: TARGET_RATIO, serverRssBytes: TARGET_SERVER_RSS }, idleServerRss, summaries, ratios, iterations,
    }, null, 2)}\n`);
    console.log(`\nwrote ${path.relative(ROOT, outFile)}`);
  } finally {
    await close();
  }
}

await main();
