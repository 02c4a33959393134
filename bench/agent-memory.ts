/**
 * Agent memory benchmark: the RSS and CPU of a `strata agent` sitting idle after deploying a small
 * configuration, and its peak RSS while applying the 512 MiB configuration, as shipped (1 MiB
 * semi-spaces, modules from the compile cache, garbage collection paced by the bytes streamed)
 * and with the pacing off (`STRATA_GC_PACING=off`: V8's own schedule, as before), plus what
 * importing each part of the agent's module graph costs. Targets: idle RSS ≤ 60 MB, applying
 * ≤ 120 MB, idle CPU ≤ 1%. Results in docs/benchmarks.md; run with `npm run bench:agent-memory`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, startServer, type TestServer } from '../test/helpers/strata-server.ts';
import { applyOnce, type ApplyRun } from './lib/agent-apply.ts';
import { describeMachine } from './lib/machine.ts';
import { readProc, running } from './lib/proc.ts';
import { median, mib, table } from './lib/stats.ts';
import { apiGet, pollUntil, scaledIngestTree, spawnAgent, stopAll, strataJson, type AgentProcess, type RolloutStatus } from './lib/strata.ts';
import { generateTree } from './lib/tree.ts';
import { onInterrupt } from './lib/interrupt.ts';
import { agentRecord } from '../test/helpers/strata-agent.ts';

const TARGET_IDLE_RSS = 60 * 1000 * 1000;
const TARGET_APPLY_RSS = 120 * 1000 * 1000;
const TARGET_IDLE_CPU = 0.01;
const PROBE = path.join(ROOT, 'bench/lib/memory-probe.ts');

/** How the agent's node process is started. */
interface Variant {
  name: string;
  /** Extra environment of the agent. */
  env: Record<string, string>;
  /** Extra node flags of the agent. */
  flags?: string[];
  /** Preloads the memory probe, for a breakdown (heap, array buffers) rather than the headline figure. */
  probe: boolean;
}

// As shipped, `strata agent` restarts itself with 1 MiB semi-spaces, `--expose-gc` and every
// module from Node's compile cache (src/lib/lean-start.ts), and paces full collections by the
// bytes it streams (src/lib/gc-pacer.ts); the baseline is the same agent with the pacing off.
const SHIPPED = 'as shipped';
const BASELINE = 'GC pacing off';
const VARIANTS: Variant[] = [
  { name: SHIPPED, env: {}, probe: false },
  { name: BASELINE, env: { STRATA_GC_PACING: 'off' }, probe: false },
  { name: `${SHIPPED} + probe`, env: {}, probe: true },
  { name: `${BASELINE} + probe`, env: { STRATA_GC_PACING: 'off' }, probe: true },
];

/** What the probe wrote: peaks and the last sample of process.memoryUsage(). */
interface ProbeReport {
  peak: Record<string, number>;
  last: Record<string, number>;
  samples: number;
}

interface IdleResult {
  variant: string;
  rssMedian: number;
  rssMin: number;
  rssMax: number;
  /** VmHWM when idling began: the peak of start-up and the small deploy. */
  hwmBeforeIdle: number;
  cpuSeconds: number;
  wallSeconds: number;
  cpuShare: number;
  probe?: ProbeReport;
}

interface ApplyResult {
  variant: string;
  run: ApplyRun;
  probe?: ProbeReport;
}

/** A daemon agent that deployed the big configuration, sampled idle afterwards. */
interface SettledResult {
  variant: string;
  /** VmHWM after the deploy: the deploy's peak. */
  hwm: number;
  rssMedian: number;
}

interface ImportCost {
  what: string;
  rss: number;
  heapUsed: number;
}

function parseOptions(): { idleSeconds: number; applyBytes: number } {
  const { values } = parseArgs({ options: { 'idle-s': { type: 'string', default: '60' }, 'apply-size-mib': { type: 'string', default: '512' } } });
  const idleSeconds = Number(values['idle-s']);
  const applyMib = Number(values['apply-size-mib']);
  if (!Number.isInteger(idleSeconds) || idleSeconds < 10 || idleSeconds > 600) throw new Error(`--idle-s must be 10 to 600, not ${JSON.stringify(values['idle-s'])}`);
  if (!Number.isInteger(applyMib) || (applyMib !== 0 && (applyMib < 16 || applyMib > 4096))) throw new Error(`--apply-size-mib must be 0 (skip) or 16 to 4096, not ${JSON.stringify(values['apply-size-mib'])}`);
  return { idleSeconds, applyBytes: applyMib * 1024 * 1024 };
}

function nodeArgs(variant: Variant): string[] {
  return [...(variant.flags ?? []), ...(variant.probe ? ['--import', PROBE] : [])];
}

function variantEnv(variant: Variant, probeFile: string): Record<string, string> {
  return { ...variant.env, ...(variant.probe ? { STRATA_BENCH_PROBE: probeFile } : {}) };
}

/**
 * A script that builds the CLI's command tree as `strata <args>` does, which loads the modules of
 * the commands those arguments name (all of them for `--help`).
 */
function cliBuild(args: string[]): string {
  const run = JSON.stringify(path.join(ROOT, 'src/cli/run.ts'));
  return `await (await import(${run})).buildProgram({ stdout: process.stdout, stderr: process.stderr, env: {}, setExitCode: () => undefined }, ${JSON.stringify(args)});`;
}

/**
 * RSS and heap after building the CLI for `cliArgs` (if given) and importing `specifiers` into a
 * fresh node (and a full GC), median of 3 runs; relative specifiers resolve from the repository root.
 */
function importCost(what: string, specifiers: string[], cacheDir?: string, cliArgs?: string[]): ImportCost {
  const enable = cacheDir ? `(await import('node:module')).enableCompileCache(${JSON.stringify(cacheDir)});` : '';
  const cli = cliArgs ? cliBuild(cliArgs) : '';
  const imports = specifiers.map((specifier) => `await import(${JSON.stringify(specifier.startsWith('.') ? path.join(ROOT, specifier) : specifier)});`).join(' ');
  const script = `${enable} ${cli} ${imports} globalThis.gc(); const u = process.memoryUsage(); process.stdout.write(JSON.stringify({ rss: u.rss, heapUsed: u.heapUsed }));`;
  const runs: { rss: number; heapUsed: number }[] = [];
  // With a cache, one unmeasured run fills it first.
  for (let run = cacheDir ? -1 : 0; run < 3; run += 1) {
    const output = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '' } });
    if (run >= 0) runs.push(JSON.parse(output) as { rss: number; heapUsed: number });
  }
  return { what, rss: median(runs.map((r) => r.rss)), heapUsed: median(runs.map((r) => r.heapUsed)) };
}

function measureImports(cacheDir: string): ImportCost[] {
  return [
    importCost('bare node', []),
    importCost('+ type stripping (one tiny .ts file)', ['./bench/lib/stats.ts']),
    importCost('+ zod', ['zod']),
    importCost('+ ws', ['ws']),
    importCost('+ pino', ['pino']),
    importCost('+ tar', ['tar']),
    importCost('+ yauzl', ['yauzl']),
    importCost('+ commander', ['commander']),
    importCost('src/cli/run.ts (the CLI with every command registered, as for --help)', [], undefined, ['--help']),
    importCost('src/agent/main.ts (the agent alone)', ['./src/agent/main.ts']),
    importCost('the CLI for `agent` + src/agent/main.ts (what `strata agent` loads)', ['./src/agent/main.ts'], undefined, ['agent']),
    importCost('the same from the compile cache (as `strata agent` runs)', ['./src/agent/main.ts'], cacheDir, ['agent']),
  ];
}

function readProbe(file: string): ProbeReport | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ProbeReport;
  } catch {
    return undefined;
  }
}

/** Reads each agent's VmRSS once a second for `seconds`, appending to its list in `samples`; an agent that exits fails the run. */
async function sampleRss(agents: AgentProcess[], seconds: number, samples: Map<string, number[]>): Promise<void> {
  for (let second = 0; second < seconds; second += 1) {
    for (const agent of agents) {
      const sample = readProc(agent.child.pid!);
      if (sample === undefined) throw new Error(`agent ${agent.name} exited while idle:\n${agent.tail()}`);
      samples.get(agent.name)!.push(sample.rss);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** Starts one agent per variant on the small configuration, waits for the deploys, then samples them idle. */
async function measureIdle(server: TestServer, joinToken: string, root: string, idleSeconds: number, agents: AgentProcess[]): Promise<IdleResult[]> {
  const started = VARIANTS.map((variant, index) => {
    const name = `idle-${index + 1}`;
    const probeFile = path.join(root, `${name}.probe.json`);
    const agent = spawnAgent({
      name, dir: path.join(root, name), nodeFlags: nodeArgs(variant),
      args: ['--server', server.url, '--join-token', joinToken, '--name', name, '--track', 'small', '--log-level', 'info'],
      env: variantEnv(variant, probeFile),
    });
    agents.push(agent);
    return { variant, agent, probeFile };
  });
  await pollUntil('the idle agents to deploy the small configuration', async () => {
    const status = await apiGet<RolloutStatus>(server, '/v1/configurations/small/status');
    return status.upToDate >= started.length ? status : undefined;
  }, 60_000);
  // Let the deploy's garbage be collected and the report be sent, as a machine would sit after it.
  await new Promise((resolve) => setTimeout(resolve, 5000));
  const samples = new Map<string, number[]>(started.map(({ agent }) => [agent.name, []]));
  const first = new Map(started.map(({ agent }) => [agent.name, readProc(agent.child.pid!)!]));
  const startedAt = performance.now();
  await sampleRss(started.map(({ agent }) => agent), idleSeconds, samples);
  const wallSeconds = (performance.now() - startedAt) / 1000;
  const results: IdleResult[] = [];
  for (const { variant, agent, probeFile } of started) {
    const last = readProc(agent.child.pid!)!;
    if (variant.probe) {
      agent.child.kill('SIGUSR2');
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const rss = samples.get(agent.name)!;
    const cpuSeconds = last.cpu - first.get(agent.name)!.cpu;
    const probe = variant.probe ? readProbe(probeFile) : undefined;
    results.push({
      variant: variant.name, rssMedian: median(rss), rssMin: Math.min(...rss), rssMax: Math.max(...rss),
      hwmBeforeIdle: first.get(agent.name)!.hwm, cpuSeconds, wallSeconds, cpuShare: cpuSeconds / wallSeconds,
      ...(probe ? { probe } : {}),
    });
  }
  return results;
}

/**
 * A daemon agent per variant (without the probe) deploys the big configuration; 5 s after it
 * reports, its RSS is read every second for 20 s. What an agent keeps after a real deploy.
 */
async function measureSettled(server: TestServer, joinToken: string, root: string, agents: AgentProcess[]): Promise<SettledResult[]> {
  const results: SettledResult[] = [];
  for (const [index, variant] of VARIANTS.filter((v) => !v.probe).entries()) {
    const name = `settled-${index + 1}`;
    const agent = spawnAgent({
      name, dir: path.join(root, name), nodeFlags: nodeArgs(variant),
      args: ['--server', server.url, '--join-token', joinToken, '--name', name, '--track', 'big', '--log-level', 'info'],
      env: variantEnv(variant, ''),
    });
    agents.push(agent);
    await pollUntil(`${name} to deploy the big configuration`, async () => {
      const record = await agentRecord(server, name).catch(() => undefined);
      return record?.configurations?.find((c) => c.configuration === 'big' && c.phase === 'deployed');
    }, 300_000, 500);
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const samples = new Map<string, number[]>([[name, []]]);
    await sampleRss([agent], 20, samples);
    const rss = samples.get(name)!;
    results.push({ variant: variant.name, hwm: readProc(agent.child.pid!)!.hwm, rssMedian: median(rss) });
    await stopAll([agent.child]);
    rmSync(path.join(root, name), { recursive: true, force: true });
  }
  return results;
}

async function main(): Promise<void> {
  const { idleSeconds, applyBytes } = parseOptions();
  const machine = describeMachine();
  const root = mkdtempSync(path.join(os.tmpdir(), 'strata-bench-agent-memory-'));
  let server: TestServer | undefined;
  const agents: AgentProcess[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanUp = (): Promise<void> => {
    cleaning ??= (async () => {
      await stopAll([...agents.map((agent) => agent.child), ...running], 10_000);
      await server?.stop();
      rmSync(root, { recursive: true, force: true });
    })();
    return cleaning;
  };
  onInterrupt(`stopping agents and removing ${root}`, cleanUp);
  try {
    console.log('measuring import costs (3 fresh node processes each) …');
    const imports = measureImports(path.join(root, 'compile-cache'));
    console.log(`\n${table([['imported', 'RSS after GC', 'heap used'], ...imports.map((i) => [i.what, `${mib(i.rss)} MiB`, `${mib(i.heapUsed)} MiB`])])}\n`);

    server = await startServer(path.join(root, 'data'));
    const joinToken = readFileSync(path.join(server.dataDir, 'join-token'), 'utf8').trim();
    const small = path.join(root, 'small-tree');
    mkdirSync(small);
    generateTree(small, { totalBytes: 1024 * 1024, smallFiles: 50, largeFiles: 0, seed: 0x5a11 });
    await strataJson(server, ['push', small, '--name', 'small', '--version', 'v1']);
    await strataJson(server, ['addconf', '--name', 'small', '--layer', 'small:v1']);
    console.log(`server ${server.url}; ${VARIANTS.length} agents deploying a 1 MiB configuration, then idle for ${idleSeconds} s …`);
    const idle = await measureIdle(server, joinToken, root, idleSeconds, agents);
    await stopAll(agents.map((agent) => agent.child));
    console.log(`\n${table([
      ['agent', 'idle RSS median (min–max)', 'VmHWM before idle', 'idle CPU', 'heap used / total', 'external (array buffers)'],
      ...idle.map((r) => [
        r.variant, `${mib(r.rssMedian)} MiB (${mib(r.rssMin)}–${mib(r.rssMax)})`, `${mib(r.hwmBeforeIdle)} MiB`,
        `${r.cpuSeconds.toFixed(2)} s / ${r.wallSeconds.toFixed(0)} s = ${(100 * r.cpuShare).toFixed(2)}%`,
        r.probe ? `${mib(r.probe.last['heapUsed']!)} / ${mib(r.probe.last['heapTotal']!)} MiB` : '',
        r.probe ? `${mib(r.probe.last['external']!)} (${mib(r.probe.last['arrayBuffers']!)}) MiB` : '',
      ]),
    ])}\n`);

    const applies: ApplyResult[] = [];
    let treeFiles = 0;
    if (applyBytes > 0) {
      const big = path.join(root, 'big-tree');
      mkdirSync(big);
      console.log(`generating and pushing the ${mib(applyBytes)} MiB tree …`);
      treeFiles = generateTree(big, scaledIngestTree(applyBytes)).files;
      await strataJson(server, ['push', big, '--name', 'big', '--version', 'v1']);
      await strataJson(server, ['addconf', '--name', 'big', '--layer', 'big:v1']);
      rmSync(big, { recursive: true, force: true });
      for (const [index, variant] of VARIANTS.entries()) {
        const name = `apply-${index + 1}`;
        const dir = path.join(root, name);
        const probeFile = path.join(root, `${name}.probe.json`);
        const run = await applyOnce({
          serverUrl: server.url, joinToken, dir, name, configuration: 'big', nodeFlags: nodeArgs(variant),
          env: variantEnv(variant, probeFile),
        });
        if (run.tree.files !== treeFiles) throw new Error(`${name} deployed ${run.tree.files} files, not ${treeFiles}`);
        const probe = variant.probe ? readProbe(probeFile) : undefined;
        applies.push({ variant: variant.name, run, ...(probe ? { probe } : {}) });
        console.log(`apply with ${variant.name}: ${run.seconds.toFixed(2)} s, peak RSS ${mib(run.peakRss)} MiB`);
        rmSync(dir, { recursive: true, force: true });
      }
      console.log(`\n${table([
        ['agent', 'apply time', 'peak RSS (VmHWM)', 'CPU', 'peak heap used / total', 'peak external / array buffers'],
        ...applies.map((a) => [
          a.variant, `${a.run.seconds.toFixed(2)} s`, `${mib(a.run.peakRss)} MiB`, `${a.run.cpuSeconds.toFixed(2)} s`,
          a.probe ? `${mib(a.probe.peak['heapUsed']!)} / ${mib(a.probe.peak['heapTotal']!)} MiB` : '',
          a.probe ? `${mib(a.probe.peak['external']!)} / ${mib(a.probe.peak['arrayBuffers']!)} MiB` : '',
        ]),
      ])}\n`);
    }

    const settled = applyBytes > 0 ? await measureSettled(server, joinToken, root, agents) : [];
    if (settled.length) {
      console.log(`\n${table([
        ['daemon agent, after deploying the big configuration', 'deploy peak (VmHWM)', 'idle RSS after (median of 20 s)'],
        ...settled.map((r) => [r.variant, `${mib(r.hwm)} MiB`, `${mib(r.rssMedian)} MiB`]),
      ])}\n`);
    }

    const headline = (name: string): { idle: IdleResult; apply?: ApplyResult } => ({ idle: idle.find((r) => r.variant === name)!, ...(applies.length ? { apply: applies.find((a) => a.variant === name)! } : {}) });
    const summaryRows = [['', BASELINE, SHIPPED, 'target']];
    const d = headline(BASELINE);
    const m = headline(SHIPPED);
    const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
    summaryRows.push(['idle RSS (median)', `${mib(d.idle.rssMedian)} MiB`, `${mib(m.idle.rssMedian)} MiB`, `≤ 60 MB (${mib(TARGET_IDLE_RSS)} MiB): ${verdict(d.idle.rssMedian <= TARGET_IDLE_RSS)} / ${verdict(m.idle.rssMedian <= TARGET_IDLE_RSS)}`]);
    if (d.apply && m.apply) summaryRows.push([`peak RSS applying ${mib(applyBytes)} MiB`, `${mib(d.apply.run.peakRss)} MiB`, `${mib(m.apply.run.peakRss)} MiB`, `≤ 120 MB (${mib(TARGET_APPLY_RSS)} MiB): ${verdict(d.apply.run.peakRss <= TARGET_APPLY_RSS)} / ${verdict(m.apply.run.peakRss <= TARGET_APPLY_RSS)}`]);
    summaryRows.push(['idle CPU', `${(100 * d.idle.cpuShare).toFixed(2)}%`, `${(100 * m.idle.cpuShare).toFixed(2)}%`, `≤ 1%: ${verdict(d.idle.cpuShare <= TARGET_IDLE_CPU)} / ${verdict(m.idle.cpuShare <= TARGET_IDLE_CPU)}`]);
    console.log(table(summaryRows));

    const date = new Date().toISOString().slice(0, 10);
    const outDir = path.join(ROOT, 'bench/out');
    mkdirSync(outDir, { recursive: true });
    const outFile = path.join(outDir, `agent-memory-${date}.json`);
    writeFileSync(outFile, `${JSON.stringify({
      benchmark: 'agent-memory', date: new Date().toISOString(), machine, idleSeconds, applyBytes,
      targets: { idleRssBytes: TARGET_IDLE_RSS, applyRssBytes: TARGET_APPLY_RSS, idleCpuShare: TARGET_IDLE_CPU },
      imports, idle, applies, settled,
    }, null, 2)}\n`);
    console.log(`\nwrote ${path.relative(ROOT, outFile)}`);
  } finally {
    await cleanUp();
  }
}

await main();
