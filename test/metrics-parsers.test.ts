/**
 * The agent's /proc parsers, sampler and Prometheus text writer: on captured samples with known
 * answers, and on this machine's real /proc, whose values must agree with what Node reports.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  busyPercent, isPartition, parseCpuStat, parseDiskstats, parseLoadavg, parseMeminfo, parseMounts, parseNetDev, parseUptime,
} from '../src/agent/metrics/system-parsers.ts';
import { parseProcessStat, parseStatusRss, processCpuPercent } from '../src/agent/metrics/process-parsers.ts';
import { MetricsSampler } from '../src/agent/metrics/sampler.ts';
import { parseChildren, processTree } from '../src/agent/metrics/process-tree.ts';
import { spawn } from 'node:child_process';
import { summarize } from '../src/agent/metrics/summary.ts';
import { PrometheusText } from '../src/agent/metrics/prometheus-text.ts';
import { expvarJson, prometheusText, redactedArgv } from '../src/agent/metrics/exposition.ts';
import { isLocalOnly, parseMetricsListen } from '../src/agent/metrics/listen-address.ts';
import { MetricsSummarySchema } from '../src/protocol/metrics.ts';
import { parsePrometheus, sampleValue } from './helpers/prometheus.ts';
import { tempDir } from './helpers/temp-dir.ts';

// Captured from a 4-core server with an NVMe disk (partitions), a SATA disk, swap and a Docker bridge.
const STAT = `cpu  1000 10 500 8000 400 0 90 0 0 0
cpu0 250 2 125 2000 100 0 20 0 0 0
cpu1 250 3 125 2000 100 0 25 0 0 0
cpu2 250 2 125 2000 100 0 25 0 0 0
cpu3 250 3 125 2000 100 0 20 0 0 0
intr 123456 0 0
ctxt 987654
btime 1700000000
`;
const STAT_LATER = STAT.replace('cpu  1000 10 500 8000 400 0 90 0 0 0', 'cpu  1300 10 600 8500 500 0 90 0 0 0')
  .replace('cpu0 250 2 125 2000 100 0 20 0 0 0', 'cpu0 550 2 225 2000 100 0 20 0 0 0');
const MEMINFO = `MemTotal:        8048576 kB
MemFree:          512000 kB
MemAvailable:    4024288 kB
Buffers:          102400 kB
Cached:          2048000 kB
SwapCached:            0 kB
SwapTotal:       2097148 kB
SwapFree:        1048574 kB
Hugepagesize:       2048 kB
`;
const MOUNTS = `sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
udev /dev devtmpfs rw,nosuid,relatime,size=4008768k 0 0
tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=804860k,mode=755 0 0
/dev/nvme0n1p2 / ext4 rw,relatime,errors=remount-ro 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
/dev/nvme0n1p1 /boot/efi vfat rw,relatime,fmask=0077 0 0
/dev/sda1 /srv/data\\040disk xfs rw,relatime 0 0
/dev/loop0 /snap/core/1 squashfs ro,nodev,relatime 0 0
overlay /var/lib/docker/overlay2/abc/merged overlay rw,relatime 0 0
`;
const DISKSTATS = `   7       0 loop0 100 0 2000 10 0 0 0 0 0 20 10 0 0 0 0 0 0
 259       0 nvme0n1 5000 100 400000 3000 8000 200 800000 9000 0 10000 12000 0 0 0 0 0 0
 259       1 nvme0n1p1 100 0 4000 50 2 0 16 1 0 60 51 0 0 0 0 0 0
 259       2 nvme0n1p2 4900 100 396000 2950 7998 200 799984 8999 0 9940 11949 0 0 0 0 0 0
   8       0 sda 1000 0 100000 500 2000 0 300000 900 0 1200 1400 0 0 0 0 0 0
   8       1 sda1 1000 0 100000 500 2000 0 300000 900 0 1200 1400 0 0 0 0 0 0
 253       0 dm-0 10 0 80 1 0 0 0 0 0 1 1 0 0 0 0 0 0
`;
const NETDEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1000000   10000    0    0    0     0          0         0  1000000   10000    0    0    0     0       0          0
  eth0: 987654321  700000    0    0    0     0          0       100 123456789  500000    0    0    0     0       0          0
docker0:       0       0    0    0    0     0          0         0     2048      20    0    0    0     0       0          0
`;
const PID_STAT = '4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 3000 0 10 0 150 50 0 0 20 0 8 0 12345 1073741824 25600 18446744073709551615 1 1 0 0 0 0 0 4096 16384 0 0 0 17 2 0 0 0 0 0';
const PID_STATUS = 'Name:\tmy (odd) app\nState:\tS (sleeping)\nTgid:\t4242\nVmPeak:\t 1100000 kB\nVmRSS:\t  102400 kB\nThreads:\t8\n';

test('CPU lines give totals and idle time per core and overall, and busy percent between readings', () => {
  const before = parseCpuStat(STAT);
  assert.equal(before.cores.length, 4);
  assert.deepEqual(before.total, { total: 1000 + 10 + 500 + 8000 + 400 + 90, idle: 8400 });
  const after = parseCpuStat(STAT_LATER);
  // 300 user + 100 system busy, 500 idle + 100 iowait idle: 400 busy of 1000.
  assert.equal(busyPercent(before.total, after.total), 40);
  assert.equal(busyPercent(before.cores[0]!, after.cores[0]!), 100);
  assert.equal(busyPercent(before.cores[1]!, after.cores[1]!), 0, 'no time passed on core 1');
  assert.throws(() => parseCpuStat('intr 1 2 3\n'), /no "cpu" line/);
});

test('load, memory, swap and uptime', () => {
  assert.deepEqual(parseLoadavg('0.52 0.31 0.20 2/345 6789\n'), [0.52, 0.31, 0.2]);
  assert.throws(() => parseLoadavg('garbage\n'), /malformed/);
  assert.deepEqual(parseMeminfo(MEMINFO), { totalBytes: 8048576 * 1024, availableBytes: 4024288 * 1024, swapTotalBytes: 2097148 * 1024, swapFreeBytes: 1048574 * 1024 });
  // A kernel without MemAvailable: free + buffers + cached.
  const old = parseMeminfo(MEMINFO.replace(/^MemAvailable.*\n/m, ''));
  assert.equal(old.availableBytes, (512000 + 102400 + 2048000) * 1024);
  assert.equal(parseUptime('350735.47 234388.90\n'), 350735.47);
});

test('mounts keep real filesystems only, with escaped paths decoded', () => {
  const mounts = parseMounts(MOUNTS);
  assert.deepEqual(mounts.map((m) => m.mount), ['/', '/boot/efi', '/srv/data disk']);
  assert.deepEqual(mounts[0], { device: '/dev/nvme0n1p2', mount: '/', fstype: 'ext4' });
  // A container's overlay root is kept.
  assert.deepEqual(parseMounts('overlay / overlay rw 0 0\nproc /proc proc rw 0 0\n').map((m) => m.mount), ['/']);
  assert.equal(parseMounts(MOUNTS, 2).length, 2, 'the limit holds');
});

test('disk and network counters, partitions told apart from whole disks', () => {
  const disks = parseDiskstats(DISKSTATS);
  assert.deepEqual(disks.map((d) => d.device), ['nvme0n1', 'nvme0n1p1', 'nvme0n1p2', 'sda', 'sda1']);
  assert.deepEqual(disks[0], { device: 'nvme0n1', readBytes: 400000 * 512, writeBytes: 800000 * 512 });
  const names = new Set(disks.map((d) => d.device));
  assert.deepEqual(disks.filter((d) => isPartition(d.device, names)).map((d) => d.device), ['nvme0n1p1', 'nvme0n1p2', 'sda1']);
  assert.equal(isPartition('nvme0n1', names), false);
  const net = parseNetDev(NETDEV);
  assert.deepEqual(net.map((n) => n.name), ['lo', 'eth0', 'docker0']);
  assert.deepEqual(net[1], { name: 'eth0', rxBytes: 987654321, txBytes: 123456789 });
});

test('a process: CPU ticks counted after the last parenthesis, and resident memory', () => {
  const stat = parseProcessStat(PID_STAT);
  assert.deepEqual(stat, { pid: 4242, state: 'S', processGroup: 4242, cpuTicks: 200 });
  assert.equal(parseStatusRss(PID_STATUS), 102400 * 1024);
  assert.equal(parseStatusRss('Name:\tzombie\nState:\tZ (zombie)\n'), 0);
  assert.equal(processCpuPercent(200, 250, 1000), 50, '50 ticks in one second is half a core');
  assert.throws(() => parseProcessStat('4242 no parenthesis'), /malformed/);
});

test("this machine's real /proc agrees with what Node reports", async () => {
  const cpu = parseCpuStat(await readFile('/proc/stat', 'latin1'));
  assert.equal(cpu.cores.length, os.cpus().length);
  assert.ok(cpu.total.total > cpu.total.idle && cpu.total.idle > 0);
  const memory = parseMeminfo(await readFile('/proc/meminfo', 'latin1'));
  assert.equal(memory.totalBytes, os.totalmem());
  assert.ok(memory.availableBytes > 0 && memory.availableBytes <= memory.totalBytes);
  assert.ok(memory.swapFreeBytes <= memory.swapTotalBytes);
  const load = parseLoadavg(await readFile('/proc/loadavg', 'latin1'));
  os.loadavg().forEach((value, i) => assert.ok(Math.abs(value - load[i]!) < 0.5, `load ${i}: ${value} vs ${load[i]}`));
  assert.ok(Math.abs(parseUptime(await readFile('/proc/uptime', 'latin1')) - os.uptime()) < 5);
  const mounts = parseMounts(await readFile('/proc/self/mounts', 'latin1'));
  assert.ok(mounts.some((m) => m.mount === '/'), 'the root filesystem is listed');
  assert.ok(mounts.every((m) => !['proc', 'sysfs', 'tmpfs', 'cgroup2'].includes(m.fstype)));
  const net = parseNetDev(await readFile('/proc/net/dev', 'latin1'));
  const interfaces = new Set(Object.keys(os.networkInterfaces()));
  assert.ok(net.some((n) => n.name === 'lo' && n.rxBytes > 0), 'loopback has traffic');
  for (const name of interfaces) assert.ok(net.some((n) => n.name === name), `${name} is in /proc/net/dev`);
  const self = parseProcessStat(await readFile(`/proc/${process.pid}/stat`, 'latin1'));
  assert.equal(self.pid, process.pid);
  const usage = process.cpuUsage();
  assert.ok(Math.abs(self.cpuTicks / 100 - (usage.user + usage.system) / 1e6) < 0.5, 'CPU time matches process.cpuUsage()');
  const rss = parseStatusRss(await readFile(`/proc/${process.pid}/status`, 'latin1'));
  assert.ok(Math.abs(rss - process.memoryUsage().rss) < 16 * 1024 * 1024, `RSS ${rss} vs ${process.memoryUsage().rss}`);
});

test('the sampler measures rates between readings of a /proc tree, and its summary is small and valid', async (t) => {
  const root = await tempDir(t);
  await mkdir(path.join(root, 'self'));
  await mkdir(path.join(root, 'net'));
  await mkdir(path.join(root, '4242/task/4242'), { recursive: true });
  await mkdir(path.join(root, '4243'));
  const files: Record<string, string> = {
    stat: STAT, loadavg: '1.50 1.00 0.50 1/100 999\n', meminfo: MEMINFO, uptime: '86400.00 1.00\n',
    'self/mounts': '/dev/root / ext4 rw 0 0\nproc /proc proc rw 0 0\n', diskstats: DISKSTATS, 'net/dev': NETDEV,
    '4242/stat': PID_STAT, '4242/status': PID_STATUS, '4242/task/4242/children': '4243 ',
    // A worker: 30 ticks so far, 1 MiB resident.
    '4243/stat': PID_STAT.replace('4242 (my (odd) app)', '4243 (worker)').replace(' 150 50 ', ' 20 10 '), '4243/status': 'Name:\tworker\nVmRSS:\t    1024 kB\n',
  };
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(root, name), text);
  const sampler = new MetricsSampler({
    procRoot: root, intervalMs: 1000,
    services: { services: () => [{ configuration: 'web', pid: 4242, state: 'running', restarts: 2 }, { configuration: 'batch', state: 'stopped', restarts: 0 }] },
  });
  const first = await sampler.sample();
  assert.equal(first.intervalMs, 0);
  assert.equal(first.disks[0]!.read.rate, 0, 'no rate without a previous reading');
  await writeFile(path.join(root, 'stat'), STAT_LATER);
  await writeFile(path.join(root, 'net/dev'), NETDEV.replace('987654321', String(987654321 + 2_000_000)));
  await writeFile(path.join(root, '4242/stat'), PID_STAT.replace(' 150 50 ', ' 250 50 '));
  await new Promise((resolve) => setTimeout(resolve, 200));
  const second = await sampler.sample();
  assert.ok(second.intervalMs >= 200);
  assert.equal(second.cpu.totalPercent, 40);
  assert.equal(second.cpu.corePercents[0], 100);
  const eth0 = second.interfaces.find((n) => n.name === 'eth0')!;
  assert.ok(Math.abs(eth0.rx.rate - (2_000_000 * 1000) / second.intervalMs) < 1);
  assert.equal(eth0.tx.rate, 0);
  const web = second.services.find((s) => s.configuration === 'web')!;
  assert.equal(web.processes, 2, 'the main process and its worker');
  assert.equal(web.rssBytes, (102400 + 1024) * 1024);
  assert.equal(web.cpuSeconds, (300 + 30) / 100);
  assert.ok(Math.abs(web.cpuPercent! - (100 / 100) * 1000 / second.intervalMs * 100) < 0.001, `100 ticks over ${second.intervalMs} ms`);
  assert.deepEqual(second.services.find((s) => s.configuration === 'batch'), { configuration: 'batch', state: 'stopped', restarts: 0 });
  assert.deepEqual(second.mounts.map((m) => m.mount), ['/'], 'statfs ran on the listed mount');

  const summary = summarize(second);
  MetricsSummarySchema.parse(summary);
  assert.equal(summary.cpu, 40);
  assert.deepEqual(summary.load, [1.5, 1, 0.5]);
  assert.equal(summary.mem.used, (8048576 - 4024288) * 1024);
  assert.equal(summary.swap.used, (2097148 - 1048574) * 1024);
  assert.equal(summary.disk.root?.mount, '/');
  assert.equal(summary.net.rx, Math.round(eth0.rx.rate), 'loopback is left out of the network rates');
  assert.deepEqual(summary.services.map((s) => [s.name, s.state, s.restarts]), [['web', 'running', 2], ['batch', 'stopped', 0]]);
  assert.equal(summary.services[0]!.rss, (102400 + 1024) * 1024);
  assert.ok(JSON.stringify(summary).length < 800, `summary is ${JSON.stringify(summary).length} bytes`);

  // The same sample as Prometheus text, read back by a real parser.
  const families = parsePrometheus(prometheusText(second, { name: 'node-1', version: 'test', state: 'running', configurations: [{ configuration: 'site', phase: 'deployed' }] }));
  assert.equal(sampleValue(families, 'strata_node_cpu_busy_percent', { cpu: 'total' }), 40);
  assert.equal(sampleValue(families, 'strata_node_memory_total_bytes'), 8048576 * 1024);
  assert.equal(sampleValue(families, 'strata_node_network_receive_bytes_total', { interface: 'eth0' }), 987654321 + 2_000_000);
  assert.equal(sampleValue(families, 'strata_service_restarts_total', { configuration: 'web' }), 2);
  assert.equal(sampleValue(families, 'strata_service_up', { configuration: 'batch', state: 'stopped' }), 1);
  assert.equal(sampleValue(families, 'strata_agent_configuration_phase', { configuration: 'site', phase: 'deployed' }), 1);
  assert.equal(families.get('strata_node_disk_read_bytes_total')?.type, 'COUNTER');
  const vars = JSON.parse(expvarJson(second, { name: 'node-1', version: 'test', state: 'running', configurations: [] }));
  assert.ok(Array.isArray(vars.cmdline) && vars.memstats.Sys > 0 && vars.sample.cpu.totalPercent === 40);
});

test("a service's processes are found through the children files of its real process tree", async (t) => {
  assert.deepEqual(parseChildren('12 345 \n'), [12, 345]);
  assert.deepEqual(parseChildren(''), []);
  // Its own process group, so that the shell and both sleeps end together.
  const shell = spawn('sh', ['-c', 'sleep 30 & sleep 30 & wait'], { stdio: 'ignore', detached: true });
  t.after(() => process.kill(-shell.pid!, 'SIGKILL'));
  // Forked children run `sh` until they exec `sleep`, so wait for both sleeps to be in place.
  const isSleep = async (pid: number): Promise<boolean> => /^sleep\x0030/.test(await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => ''));
  let tree: number[] = [];
  for (let i = 0; i < 100; i++) {
    tree = await processTree('/proc', shell.pid!);
    if (tree.length === 3 && (await isSleep(tree[1]!)) && (await isSleep(tree[2]!))) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(tree.length, 3, `sh and two sleeps: ${tree.join(' ')}`);
  assert.equal(tree[0], shell.pid);
  for (const pid of tree.slice(1)) assert.ok(await isSleep(pid), `${pid} runs sleep`);
  assert.deepEqual(await processTree('/proc', shell.pid!, 2), tree.slice(0, 2), 'the limit holds');
  assert.deepEqual(await processTree('/proc', 0x3fffffff), [0x3fffffff], 'a pid that does not exist is just itself');
});

test('the Prometheus writer escapes label values and help text so a real parser reads them back', () => {
  const tricky = 'a "quoted" \\ back\nslash';
  const text = new PrometheusText()
    .family('demo_total', 'counter', 'Help with a \\ backslash\nand a newline.', [[{ path: tricky }, 3], [{ path: 'plain' }, 1.5]])
    .single('demo_nan', 'gauge', 'Not a number.', NaN)
    .single('demo_inf', 'gauge', 'Infinite.', Infinity)
    .text();
  const families = parsePrometheus(text);
  assert.equal(families.get('demo_total')?.metrics.find((m) => m.labels?.['path'] !== 'plain')?.labels?.['path'], tricky);
  assert.equal(sampleValue(families, 'demo_total', { path: 'plain' }), 1.5);
  assert.equal(families.get('demo_nan')?.metrics[0]?.value, 'NaN');
  assert.equal(families.get('demo_inf')?.metrics[0]?.value, '+Inf');
  assert.throws(() => new PrometheusText().single('bad-name', 'gauge', 'x', 1), /invalid/);
  assert.throws(() => new PrometheusText().single('twice', 'gauge', 'x', 1).single('twice', 'gauge', 'x', 1), /repeated/);
});

test('listen addresses: loopback and Unix sockets are local, anything else is not; secrets are redacted from cmdline', () => {
  assert.deepEqual(parseMetricsListen('127.0.0.1:9464'), { kind: 'tcp', host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseMetricsListen('[::1]:0'), { kind: 'tcp', host: '::1', port: 0 });
  assert.deepEqual(parseMetricsListen('unix:/run/strata.sock'), { kind: 'unix', path: '/run/strata.sock' });
  assert.throws(() => parseMetricsListen('unix:relative.sock'), /absolute/);
  assert.throws(() => parseMetricsListen('9464'), /write it like/);
  assert.throws(() => parseMetricsListen('127.0.0.1:70000'), /write it like/);
  for (const local of ['127.0.0.1:1', '127.1.2.3:1', '[::1]:1', 'localhost:1', 'unix:/x.sock']) assert.equal(isLocalOnly(parseMetricsListen(local)), true, local);
  for (const open of ['0.0.0.0:1', '[::]:1', '10.0.0.5:1', 'example.com:1']) assert.equal(isLocalOnly(parseMetricsListen(open)), false, open);
  assert.deepEqual(redactedArgv(['node', 'main.ts', 'agent', '--join-token', 'SJ1.secret', '--token=abc', '--name', 'x']),
    ['node', 'main.ts', 'agent', '--join-token', '[redacted]', '--token=[redacted]', '--name', 'x']);
});
