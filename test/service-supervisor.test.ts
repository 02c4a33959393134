/** The process runtime's supervisor, with real child processes: restarts, stops, adoption. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger } from '../src/lib/logger.ts';
import { ProcessSupervisor, type SupervisorOptions } from '../src/agent/service/supervisor.ts';
import { isSameProcess, processStat } from '../src/agent/service/proc.ts';
import { readServiceRecord, writeServiceRecord } from '../src/agent/service/record.ts';
import { ServiceSpecSchema, type ServiceSpecInput } from '../src/protocol/service.ts';
import { tempDir } from './helpers/temp-dir.ts';
import { waitFor } from './helpers/strata-agent.ts';
import { resolveSpec, writeRelease } from './helpers/service-release.ts';

const log = createLogger({ level: 'silent' });

function supervisor(confDir: string, extra: Partial<SupervisorOptions> = {}): ProcessSupervisor {
  return new ProcessSupervisor({ configuration: 'site', confDir, log, pollMs: 100, settleMs: 300, ...extra });
}

async function started(t: { after: (fn: () => Promise<void>) => void }, files: Record<string, string>, spec: ServiceSpecInput, extra: Partial<SupervisorOptions> = {}) {
  const confDir = await tempDir(t);
  const release = await writeRelease(path.join(confDir, 'releases', 'r1'), files);
  const resolved = await resolveSpec(spec, release);
  const sup = supervisor(confDir, extra);
  await sup.start(resolved, { releaseId: 'r1', revision: 1, spec: ServiceSpecSchema.parse(spec) });
  t.after(async () => sup.stop());
  return { confDir, release, sup, resolved };
}

test('a crashing service is restarted with growing delays, and its output lands in service.log', async (t) => {
  const { confDir, sup } = await started(t, { 'run.sh': '#!/bin/sh\necho "started at $(date +%s%N)"\nexit 3\n' }, {
    command: 'run.sh', restart: { policy: 'always', backoff: '100ms', maxBackoff: '2s' },
  });
  const logged = async () => (await readFile(path.join(confDir, 'logs', 'service.log'), 'utf8').catch(() => '')).trim().split('\n').filter((l) => l !== '');
  await waitFor('five starts logged', async () => (await logged()).length >= 5, 15_000, 20);
  await sup.stop();
  assert.ok(sup.info().restarts >= 4);
  const starts = (await logged()).map((line) => Number(line.split(' ').pop()) / 1e6);
  assert.ok(starts.length >= 5, `five starts logged, got ${starts.length}`);
  const gaps = starts.slice(1).map((at, i) => at - starts[i]!);
  // 100, 200, 400, 800 ms: each gap at least the backoff and the last well above the first.
  assert.ok(gaps[0]! >= 90, `first gap ${gaps[0]}`);
  assert.ok(gaps[3]! >= 750, `fourth gap ${gaps[3]}`);
  // Process start-up adds noise to every gap; the backoff part doubles each time.
  assert.ok(gaps[3]! > gaps[0]! + 400 && gaps[2]! > gaps[0]! + 100, `gaps grow: ${gaps.join(', ')}`);
  assert.equal(sup.info().lastExit?.code, 3);
});

test('policy never leaves a crashed service failed; on-failure leaves a clean exit stopped', async (t) => {
  const failing = await started(t, { 'run.sh': '#!/bin/sh\nexit 1\n' }, { command: 'run.sh', restart: { policy: 'never' } });
  await waitFor('failed', async () => failing.sup.state === 'failed', 5000, 20);
  assert.equal(failing.sup.info().restarts, 0);
  const clean = await started(t, { 'run.sh': '#!/bin/sh\nsleep 0.2\nexit 0\n' }, { command: 'run.sh', restart: { policy: 'on-failure', backoff: '50ms' } });
  await waitFor('stopped', async () => clean.sup.state === 'stopped', 5000, 20);
  assert.equal(clean.sup.info().restarts, 0);
});

test('a graceful stop is honoured: the service gets SIGTERM and exits by itself', async (t) => {
  const { confDir, sup } = await started(t, {
    'run.sh': '#!/bin/sh\ntrap \'echo got-term; exit 0\' TERM\necho ready\nwhile true; do sleep 0.05; done\n',
  }, { command: 'run.sh', stop: { grace: '5s' } });
  await waitFor('running', async () => sup.state === 'running', 5000, 20);
  const pid = sup.info().pid!;
  const begun = Date.now();
  await sup.stop();
  assert.ok(Date.now() - begun < 3000, 'stopped well before the grace ran out');
  assert.equal(await processStat(pid), undefined);
  assert.match(await readFile(path.join(confDir, 'logs', 'service.log'), 'utf8'), /got-term/);
  assert.equal(sup.state, 'stopped');
});

test('a service ignoring SIGTERM is killed after the grace', async (t) => {
  const { sup } = await started(t, { 'run.sh': "#!/bin/sh\ntrap '' TERM\nwhile true; do sleep 0.05; done\n" }, { command: 'run.sh', stop: { grace: '700ms' } });
  await waitFor('running', async () => sup.state === 'running', 5000, 20);
  const pid = sup.info().pid!;
  const begun = Date.now();
  await sup.stop();
  const took = Date.now() - begun;
  assert.ok(took >= 650 && took < 4000, `stop took ${took} ms`);
  assert.equal(await processStat(pid), undefined);
});

test('a new supervisor adopts the running service by pid and start time, and refuses a recycled pid', async (t) => {
  const spec = { command: 'run.sh', stop: { grace: '2s' } } satisfies ServiceSpecInput;
  const { confDir, sup, resolved } = await started(t, { 'run.sh': '#!/bin/sh\nwhile true; do echo tick; sleep 0.1; done\n' }, spec);
  await waitFor('running', async () => sup.state === 'running', 5000, 20);
  const pid = sup.info().pid!;
  sup.detach();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const record = (await readServiceRecord(confDir))!;
  assert.ok(await isSameProcess(pid, record.startTime!), 'still running after the supervisor let go');

  const second = supervisor(confDir);
  assert.equal(await second.adopt(async () => resolved), true);
  assert.equal(second.info().pid, pid);
  await waitFor('running again', async () => second.state === 'running', 5000, 20);
  // Output keeps flowing into the log across the adoption.
  const before = (await readFile(path.join(confDir, 'logs', 'service.log'), 'utf8')).length;
  await waitFor('more output', async () => (await readFile(path.join(confDir, 'logs', 'service.log'), 'utf8')).length > before, 3000, 50);
  await second.stop();
  assert.equal(await processStat(pid), undefined);

  // A record whose start time does not match (the pid was reused) adopts nothing and signals nothing.
  await writeServiceRecord(confDir, { ...record, pid: process.pid, startTime: '1' });
  const third = supervisor(confDir);
  assert.equal(await third.adopt(async () => resolved), false);
  assert.equal(third.info().pid, undefined);
  assert.equal(third.state, 'stopped');
});

test('a service that dies while adopted is noticed by polling and restarted', async (t) => {
  const { confDir, sup, resolved } = await started(t, { 'run.sh': '#!/bin/sh\nwhile true; do sleep 0.1; done\n' }, { command: 'run.sh', restart: { backoff: '100ms' } });
  await waitFor('running', async () => sup.state === 'running', 5000, 20);
  sup.detach();
  const adopted = supervisor(confDir);
  t.after(() => adopted.stop());
  assert.equal(await adopted.adopt(async () => resolved), true);
  const pid = adopted.info().pid!;
  process.kill(-pid, 'SIGKILL');
  await waitFor('restarted with a new pid', async () => adopted.info().pid !== undefined && adopted.info().pid !== pid && adopted.state === 'running', 5000, 20);
  assert.equal(adopted.info().restarts, 1);
});

test('bad input: a missing program or one outside the release is refused with the field named', async (t) => {
  const dir = await tempDir(t);
  const release = await writeRelease(path.join(dir, 'r1'), { 'run.sh': '#!/bin/sh\n' });
  await writeFile(path.join(dir, 'outside.sh'), '#!/bin/sh\n');
  const { symlink } = await import('node:fs/promises');
  await symlink('../outside.sh', path.join(release, 'escape.sh'));
  await assert.rejects(resolveSpec({ command: 'missing.sh' }, release), /^ServiceSpecError: command: missing.sh does not exist/);
  await assert.rejects(resolveSpec({ command: 'escape.sh' }, release), /command: escape.sh leads outside the release/);
  await assert.rejects(resolveSpec({ command: 'run.sh', workdir: 'nope' }, release), /workdir: nope does not exist/);
  await assert.rejects(resolveSpec({ command: 'run.sh', health: { command: ['/bin/true'] } }, release), /health.command: the program must be a path inside the release/);
  assert.throws(() => ServiceSpecSchema.parse({ command: '../x' }), /must be a path inside the release/);
});

test('service.log is rotated by size with a bounded number of copies', async (t) => {
  const line = 'x'.repeat(99);
  const { confDir, sup } = await started(t, { 'run.sh': `#!/bin/sh\nwhile true; do echo ${line}; sleep 0.005; done\n` }, { command: 'run.sh' }, { pollMs: 50, logMaxBytes: 4000, logKeep: 2 });
  const log = path.join(confDir, 'logs', 'service.log');
  const { stat } = await import('node:fs/promises');
  await waitFor('two rotations', async () => stat(`${log}.2`).then(() => true, () => false), 15_000, 50);
  await new Promise((resolve) => setTimeout(resolve, 500));
  await sup.stop();
  await assert.rejects(stat(`${log}.3`), /ENOENT/);
  for (const file of [log, `${log}.1`, `${log}.2`]) {
    const { size } = await stat(file);
    // At most the limit plus what one poll interval lets through.
    assert.ok(size <= 4000 + 4000, `${file} is ${size} bytes`);
  }
  assert.match(await readFile(`${log}.1`, 'utf8'), new RegExp(`^(${line}\\n)+$`));
});

test('a process that ran for the stable period resets the backoff', async (t) => {
  // Each run lasts 300 ms, longer than stableMs: every restart waits the first backoff again.
  const { sup } = await started(t, { 'run.sh': '#!/bin/sh\nsleep 0.3\nexit 1\n' }, { command: 'run.sh', restart: { backoff: '100ms', maxBackoff: '5s' } }, { stableMs: 200 });
  const delays: number[] = [];
  let last = '';
  await waitFor('four restarts', async () => {
    const info = sup.info();
    if (info.state === 'restarting' && info.since !== last) {
      last = info.since;
      delays.push(Date.now());
    }
    return info.restarts >= 4;
  }, 15_000, 10);
  await sup.stop();
  const gaps = delays.slice(1).map((at, i) => at - delays[i]!);
  // Without the reset the waits would be 100, 200, 400 ms on top of each 300 ms run.
  for (const gap of gaps) assert.ok(gap < 650, `gaps stay flat: ${gaps.join(', ')}`);
  assert.ok(gaps.length >= 2);
});

test('stop-services stops what an agent left running, and refuses while an agent holds the directory', async (t) => {
  const dir = await tempDir(t);
  const confDir = path.join(dir, 'site');
  const release = await writeRelease(path.join(confDir, 'releases', 'r1'), { 'run.sh': '#!/bin/sh\nwhile true; do sleep 0.1; done\n' });
  const spec = { command: 'run.sh', stop: { grace: '2s' } } satisfies ServiceSpecInput;
  const sup = supervisor(confDir);
  await sup.start(await resolveSpec(spec, release), { releaseId: 'r1', revision: 1, spec: ServiceSpecSchema.parse(spec) });
  const pid = sup.info().pid!;
  sup.detach();
  const { stopServices } = await import('../src/agent/service/stop-services.ts');
  // This process holds the directory's lock, as a running agent would.
  const { lockDirectory } = await import('../src/agent/lock.ts');
  const unlock = await lockDirectory(dir);
  await assert.rejects(stopServices(dir, log), new RegExp(`another agent \\(pid ${process.pid}\\) is running`));
  await unlock();
  assert.notEqual(await processStat(pid), undefined, 'a refused stop-services touched nothing');
  assert.deepEqual(await stopServices(dir, log), [{ configuration: 'site', pid }]);
  assert.equal(await processStat(pid).then((s) => (s?.state === 'Z' ? undefined : s)), undefined);
  assert.deepEqual(await stopServices(dir, log), [{ configuration: 'site' }]);
});
