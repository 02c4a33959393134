/**
 * Agent metrics overhead. Part one, in this process: what one sample costs (wall and CPU time,
 * summary and exposition sizes) with one stand-in service process to watch, and what that is at
 * the default 10 s interval. Part two: two real agents idle side by side for `--idle-s` (default
 * 300, the issue's 5 minutes), each supervising one service (a configuration `svc` whose service
 * is a shell script that sleeps) — one with the local endpoint on and scraped every 15 s like
 * Prometheus would, one with it off (both sample every 10 s and send summaries) — their RSS and
 * CPU share. Target (issue 5): RSS ≤ 70 MB and CPU ≤ 1% of a core with metrics on.
 * Run with `npm run bench:agent-metrics` (or `node bench/agent-metrics.ts --idle-s 60`).
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, startServer, type TestServer } from '../test/helpers/strata-server.ts';
import { MetricsSampler } from '../src/agent/metrics/sampler.ts';
import { summarize } from '../src/agent/metrics/summary.ts';
import { prometheusText } from '../src/agent/metrics/exposition.ts';
import { describeMachine } from './lib/machine.ts';
import { readProc, running } from './lib/proc.ts';
import { median, mib, table } from './lib/stats.ts';
import { agentArgv, apiGet, pollUntil, spawnAgent, stopAll, strataJson, type AgentProcess, type RolloutStatus } from './lib/strata.ts';
import { onInterrupt } from './lib/interrupt.ts';

const TARGET_RSS = 70 * 1000 * 1000;
const TARGET_CPU = 0.01;
const SAMPLES = 200;

/** A free loopback port (closed again before the agent takes it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    }).on('error', reject);
  });
}

/** GET /metrics from the agent's endpoint; resolves with the body's length. */
function scrape(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', timeout: 5_000 }, (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => (bytes += chunk.length)).on('end', () => resolve(bytes));
    }).on('error', reject).on('timeout', function (this: http.ClientRequest) {
      this.destroy(new Error('scrape timed out'));
    });
  });
}

/** Pushes `svc`: a release whose service is a shell script that sleeps, supervised by each agent. */
async function addServiceConfiguration(server: TestServer, root: string): Promise<void> {
  const tree = path.join(root, 'svc-tree');
  mkdirSync(tree);
  writeFileSync(path.join(tree, 'run.sh'), '#!/bin/sh\nexec sleep 3600\n');
  chmodSync(path.join(tree, 'run.sh'), 0o755);
  const spec = path.join(root, 'svc.toml');
  writeFileSync(spec, 'command = "run.sh"\n[stop]\ngrace = "2s"\n');
  await strataJson(server, ['push', tree, '--name', 'svc', '--version', 'v1']);
  await strataJson(server, ['addconf', '--name', 'svc', '--layer', 'svc:v1', '--service', spec]);
}

/** Stops the services the agents left running (they outlive their agent on purpose). */
function stopServices(root: string, names: string[]): void {
  for (const name of names) {
    try {
      execFileSync(process.execPath, agentArgv([], ['stop-services', '--dir', path.join(root, name)]), { stdio: 'ignore', timeout: 30_000 });
    } catch {
      // Never deployed, or already stopped.
    }
  }
}

/** Part one: the cost of one sample in this process. */
async function sampleCost(): Promise<{ wallMsMedian: number; cpuMsPerSample: number; summaryBytes: number; prometheusBytes: number; cpuShareAt10s: number }> {
  const service = spawn('sleep', ['600'], { stdio: 'ignore' });
  running.add(service);
  try {
    const sampler = new MetricsSampler({ services: { services: () => [{ configuration: 'svc', pid: service.pid!, state: 'running', restarts: 0 }] } });
    await sampler.sample();
    const walls: number[] = [];
    const cpuBefore = process.cpuUsage();
    let last = await sampler.sample();
    for (let i = 0; i < SAMPLES; i++) {
      const started = performance.now();
      last = await sampler.sample();
      walls.push(performance.now() - started);
    }
    const cpu = process.cpuUsage(cpuBefore);
    const cpuMsPerSample = (cpu.user + cpu.system) / 1000 / (SAMPLES + 1);
    return {
      wallMsMedian: median(walls), cpuMsPerSample, cpuShareAt10s: cpuMsPerSample / 10_000,
      summaryBytes: JSON.stringify(summarize(last)).length,
      prometheusBytes: prometheusText(last, { name: 'bench', version: 'bench', state: 'running', configurations: [] }).length,
    };
  } finally {
    service.kill();
  }
}

interface IdleResult {
  agent: string;
  rssMedian: number;
  rssMax: number;
  cpuShare: number;
  scrapes: number;
}

/** Part two: two agents idle side by side, one with the endpoint on and scraped. */
async function idle(server: TestServer, root: string, idleSeconds: number, agents: AgentProcess[]): Promise<IdleResult[]> {
  const joinToken = readFileSync(path.join(server.dataDir, 'join-token'), 'utf8').trim();
  const port = await freePort();
  const variants = [
    { name: 'endpoint-on', extra: ['--metrics-listen', `127.0.0.1:${port}`] },
    { name: 'endpoint-off', extra: [] },
  ];
  const started = variants.map((v) => {
    const agent = spawnAgent({ name: v.name, dir: path.join(root, v.name), args: ['--server', server.url, '--join-token', joinToken, '--name', v.name, '--track', 'svc', '--log-level', 'info', ...v.extra] });
    agents.push(agent);
    return agent;
  });
  await pollUntil('the endpoint answering', async () => (await scrape(port).catch(() => 0)) > 0 || undefined, 30_000, 250);
  await pollUntil('both agents running their service', async () => {
    const status = await apiGet<RolloutStatus>(server, '/v1/configurations/svc/status');
    return status.upToDate >= started.length ? status : undefined;
  }, 60_000, 250);
  // Let start-up settle (enrolment, first samples, the first summaries sent) before measuring.
  await new Promise((resolve) => setTimeout(resolve, 15_000));
  const first = started.map((a) => readProc(a.child.pid!)!);
  const rss: number[][] = started.map(() => []);
  let scrapes = 0;
  const t0 = Date.now();
  for (let tick = 0; Date.now() - t0 < idleSeconds * 1000 && tick < idleSeconds; tick++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (tick % 5 === 0) started.forEach((a, i) => rss[i]!.push(readProc(a.child.pid!)?.rss ?? 0));
    if (tick % 15 === 0) {
      await scrape(port);
      scrapes += 1;
    }
  }
  const wall = (Date.now() - t0) / 1000;
  return started.map((a, i) => {
    const last = readProc(a.child.pid!)!;
    return { agent: a.name, rssMedian: median(rss[i]!), rssMax: Math.max(...rss[i]!), cpuShare: (last.cpu - first[i]!.cpu) / wall, scrapes: i === 0 ? scrapes : 0 };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'idle-s': { type: 'string', default: '300' } } });
  const idleSeconds = Number(values['idle-s']);
  if (!Number.isInteger(idleSeconds) || idleSeconds < 30 || idleSeconds > 1800) throw new Error(`--idle-s must be 30 to 1800, not ${JSON.stringify(values['idle-s'])}`);
  const machine = describeMachine();
  const root = mkdtempSync(path.join(os.tmpdir(), 'strata-bench-agent-metrics-'));
  let server: TestServer | undefined;
  const agents: AgentProcess[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanUp = (): Promise<void> => {
    cleaning ??= (async () => {
      await stopAll([...agents.map((agent) => agent.child), ...running], 10_000);
      stopServices(root, ['endpoint-on', 'endpoint-off']);
      await server?.stop();
      rmSync(root, { recursive: true, force: true });
    })();
    return cleaning;
  };
  onInterrupt(`stopping agents and removing ${root}`, cleanUp);
  try {
    console.log(`one sample, ${SAMPLES} times in this process, watching one service process …`);
    const cost = await sampleCost();
    console.log(`\n${table([
      ['wall per sample (median)', 'CPU per sample', 'CPU share at 10 s', 'summary', 'Prometheus text'],
      [`${cost.wallMsMedian.toFixed(2)} ms`, `${cost.cpuMsPerSample.toFixed(2)} ms`, `${(100 * cost.cpuShareAt10s).toFixed(3)}%`, `${cost.summaryBytes} B`, `${cost.prometheusBytes} B`],
    ])}\n`);
    console.log(`two agents idle for ${idleSeconds} s (metrics every 10 s; one endpoint scraped every 15 s) …`);
    server = await startServer(path.join(root, 'data'));
    await addServiceConfiguration(server, root);
    const results = await idle(server, root, idleSeconds, agents);
    const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
    console.log(`\n${table([
      ['agent', 'RSS median', 'RSS max', 'CPU share', `target RSS ≤ 70 MB (${mib(TARGET_RSS)} MiB), CPU ≤ 1%`],
      ...results.map((r) => [r.agent, `${mib(r.rssMedian)} MiB`, `${mib(r.rssMax)} MiB`, `${(100 * r.cpuShare).toFixed(2)}%`, `${verdict(r.rssMedian <= TARGET_RSS)} / ${verdict(r.cpuShare <= TARGET_CPU)}`]),
    ])}\n`);
    const outDir = path.join(ROOT, 'bench/out');
    mkdirSync(outDir, { recursive: true });
    const outFile = path.join(outDir, `agent-metrics-${new Date().toISOString().slice(0, 10)}.json`);
    writeFileSync(outFile, `${JSON.stringify({ benchmark: 'agent-metrics', date: new Date().toISOString(), machine, idleSeconds, targets: { rssBytes: TARGET_RSS, cpuShare: TARGET_CPU }, cost, results }, null, 2)}\n`);
    console.log(`wrote ${path.relative(ROOT, outFile)}`);
  } finally {
    await cleanUp();
  }
}

await main();
