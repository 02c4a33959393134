/**
 * The deploy hook on real processes: the exact environment, timeouts that stop the whole process
 * group, a bounded output tail, hooks that cannot start, and the private STATEFILE.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { hookEnvironment } from '../src/agent/hook/hook-environment.ts';
import { forgetHook, recordHook, stopOrphanHook } from '../src/agent/hook/hook-record.ts';
import { runHook } from '../src/agent/hook/run-hook.ts';
import { groupAlive, processStat, signalGroup } from '../src/agent/service/proc.ts';
import { writeStateFile } from '../src/agent/hook/state-file.ts';
import type { Configuration } from '../src/store/contract.ts';
import { tempDir } from './helpers/temp-dir.ts';
import { waitFor } from './helpers/strata-agent.ts';

const BLOB = 'a'.repeat(64);

/** A configuration revision with two layers. */
const CONFIGURATION: Configuration = {
  name: 'web',
  revision: 7,
  seq: 42,
  id: 'f'.repeat(64),
  layers: [
    { component: 'base', version: 'v1', blob: BLOB, size: 10, createdAt: '2024-01-02T03:04:05.000Z' },
    { component: 'code', version: 'v2.3', blob: 'b'.repeat(64), size: 20, createdAt: '2024-01-02T03:04:06.500Z' },
  ],
  updatedAt: '2024-01-03T00:00:00.000Z',
  updatedBy: 'alice',
};

/** Writes an executable shell script and returns its path. */
async function script(dir: string, name: string, body: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

/** Parses `env -0` output into a record. */
function parseEnv0(output: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of output.split('\0').filter(Boolean)) {
    const at = line.indexOf('=');
    env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

/** True while a process with `pid` runs (a zombie left for an init that does not reap counts as gone). */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Parses `env` output (one NAME=value per line) into a record. */
function parseEnv(output: string): Record<string, string> {
  return parseEnv0(output.split('\n').join('\0'));
}

describe('hookEnvironment', () => {
  it('holds exactly the deploy variables and the listed agent variables that are set', () => {
    const env = hookEnvironment({
      configuration: CONFIGURATION,
      oldId: 'e'.repeat(64),
      oldRoot: '/srv/web/releases/old',
      newRoot: '/srv/web/releases/new',
      stateFile: '/srv/web/.statefile-1.json',
      agentEnv: { PATH: '/usr/bin:/bin', HOME: '/home/agent', LANG: 'C.UTF-8', SECRET_TOKEN: 'no', SHELL: undefined },
    });
    assert.deepEqual(env, {
      PATH: '/usr/bin:/bin',
      HOME: '/home/agent',
      LANG: 'C.UTF-8',
      OLDID: 'e'.repeat(64),
      OLDROOT: '/srv/web/releases/old',
      NEWID: 'f'.repeat(64),
      NEWROOT: '/srv/web/releases/new',
      STATEFILE: '/srv/web/.statefile-1.json',
      LAYER_0_NAME: 'base',
      LAYER_0_VERSION: 'v1',
      LAYER_1_NAME: 'code',
      LAYER_1_VERSION: 'v2.3',
      STRATA_CONFIG: 'web',
      STRATA_REVISION: '7',
    });
  });
});

describe('runHook', () => {
  it('runs the hook with exactly that environment; OLDID and OLDROOT are empty on the first deploy', async (t) => {
    const dir = await tempDir(t);
    // The hook is env(1) itself: a shell would add PWD and SHLVL of its own.
    const hook = path.join(dir, 'deploy');
    await symlink('/usr/bin/env', hook);
    const env = hookEnvironment({
      configuration: CONFIGURATION,
      newRoot: path.join(dir, 'releases/new'),
      stateFile: path.join(dir, 'state'),
      agentEnv: { ...process.env, USER: 'agent', LOGNAME: 'agent', TMPDIR: '/tmp', LC_ALL: 'C', SHELL: '/bin/sh', AWS_SECRET: 'leak' },
    });
    assert.equal(env['OLDID'], '');
    assert.equal(env['OLDROOT'], '');
    const result = await runHook({ hook, cwd: dir, env, timeoutMs: 10_000 });
    assert.equal(result.exitCode, 0);
    assert.equal(result.timedOut, false);
    assert.deepEqual(parseEnv(result.output), env);
  });

  it('reports a failing exit code with stdout and stderr interleaved', async (t) => {
    const dir = await tempDir(t);
    const hook = await script(dir, 'deploy', 'echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three; exit 3');
    const result = await runHook({ hook, cwd: dir, env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000 });
    assert.equal(result.exitCode, 3);
    assert.equal(result.signal, null);
    assert.equal(result.output, 'one\ntwo\nthree\n');
    assert.equal(result.spawnError, undefined);
  });

  it('on timeout stops the whole process group, children included', async (t) => {
    const dir = await tempDir(t);
    const pidFile = path.join(dir, 'child.pid');
    // The hook ignores SIGTERM, so only the SIGKILL after the grace period stops it.
    const hook = await script(dir, 'deploy', `trap '' TERM\nsleep 1000 &\necho $! > ${pidFile}\nwait`);
    const result = await runHook({ hook, cwd: dir, env: { PATH: '/usr/bin:/bin' }, timeoutMs: 300, killGraceMs: 300 });
    assert.equal(result.timedOut, true);
    assert.equal(result.exitCode, null);
    assert.equal(result.signal, 'SIGKILL');
    assert.ok(result.durationMs >= 600 && result.durationMs < 5000, `took ${result.durationMs} ms`);
    const childPid = Number((await readFile(pidFile, 'utf8')).trim());
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await alive(childPid), false, 'the sleep child must be gone');
  });

  it('on timeout a hook that obeys SIGTERM ends with SIGTERM, and its children are gone', async (t) => {
    const dir = await tempDir(t);
    const pidFile = path.join(dir, 'child.pid');
    const hook = await script(dir, 'deploy', `sleep 1000 &\necho $! > ${pidFile}\nsleep 1000`);
    const result = await runHook({ hook, cwd: dir, env: { PATH: '/usr/bin:/bin' }, timeoutMs: 300, killGraceMs: 5000 });
    assert.equal(result.timedOut, true);
    assert.equal(result.signal, 'SIGTERM');
    assert.ok(result.durationMs < 3000, `took ${result.durationMs} ms`);
    const childPid = Number((await readFile(pidFile, 'utf8')).trim());
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await alive(childPid), false);
  });

  it('keeps only the tail of a long output', async (t) => {
    const dir = await tempDir(t);
    const hook = await script(dir, 'deploy', 'i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done; echo END');
    const result = await runHook({ hook, cwd: dir, env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000, maxOutputBytes: 1000 });
    assert.equal(result.exitCode, 0);
    assert.ok(Buffer.byteLength(result.output) <= 1000);
    assert.ok(result.output.endsWith('line 2999\nEND\n'));
    assert.ok(result.outputDropped > 20_000);
  });

  it('reports a missing hook as a result, not a throw', async (t) => {
    const dir = await tempDir(t);
    const hook = path.join(dir, 'nope');
    const result = await runHook({ hook, cwd: dir, env: {}, timeoutMs: 1000 });
    assert.equal(result.spawnError, 'ENOENT');
    assert.equal(result.exitCode, null);
    assert.equal(result.timedOut, false);
    assert.match(result.output, new RegExp(`^hook ${hook} is missing \\(ENOENT\\)`));
  });

  it('reports a hook that is not executable', async (t) => {
    const dir = await tempDir(t);
    const hook = await script(dir, 'deploy', 'exit 0');
    await chmod(hook, 0o644);
    const result = await runHook({ hook, cwd: dir, env: {}, timeoutMs: 1000 });
    assert.equal(result.spawnError, 'EACCES');
    assert.equal(result.output, `hook ${hook} is not executable (EACCES)`);
  });

  it('stops the hook when aborted', async (t) => {
    const dir = await tempDir(t);
    const hook = await script(dir, 'deploy', 'sleep 1000');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const result = await runHook({ hook, cwd: dir, env: { PATH: '/usr/bin:/bin' }, timeoutMs: 60_000, signal: controller.signal });
    assert.equal(result.aborted, true);
    assert.equal(result.timedOut, false);
    assert.equal(result.signal, 'SIGTERM');
  });
});

describe('stopOrphanHook', () => {
  const gone = async (pid: number): Promise<boolean> => {
    const stat = await processStat(pid);
    return stat === undefined || stat.state === 'Z';
  };

  it('stops a recorded hook that still runs, its whole group, and forgets it', async (t) => {
    const dir = await tempDir(t);
    const child = spawn('sh', ['-c', 'sleep 30 & wait'], { detached: true, stdio: 'ignore' });
    t.after(() => signalGroup(child.pid!, 'SIGKILL'));
    const exited = once(child, 'exit');
    await recordHook(dir, { release: 'rel-1', stateFile: path.join(dir, '.statefile-1.json'), pid: child.pid! });
    const discarded: string[] = [];
    const discard = async (release: string): Promise<boolean> => {
      // Before the record goes: a crash right here must still find the release next time.
      await readFile(path.join(dir, 'hook.json'));
      discarded.push(release);
      return true;
    };
    assert.deepEqual(await stopOrphanHook(dir, 2000, discard), { stopped: child.pid, release: 'rel-1' });
    assert.deepEqual(discarded, ['rel-1']);
    await exited;
    assert.equal(groupAlive(child.pid!), false, 'the hook and its sleep are gone');
    await assert.rejects(readFile(path.join(dir, 'hook.json')), { code: 'ENOENT' });
  });

  it('finds by its STATEFILE a hook recorded before its pid was known, and stops only that one', async (t) => {
    const dir = await tempDir(t);
    const stateFile = path.join(dir, '.statefile-4.json');
    // As the agent leaves it when killed between the spawn and the record with the pid.
    await recordHook(dir, { release: 'rel-4', stateFile });
    assert.equal((JSON.parse(await readFile(path.join(dir, 'hook.json'), 'utf8')) as { pid?: number }).pid, undefined);
    const started = (file: string) => {
      // OLD_STATEFILE comes first and ends in the very text sought: only the whole entry counts.
      const child = spawn('sh', ['-c', 'sleep 30 & wait'], { detached: true, stdio: 'ignore', env: { PATH: process.env['PATH'] ?? '', OLD_STATEFILE: file, STATEFILE: file } });
      t.after(() => signalGroup(child.pid!, 'SIGKILL'));
      return child;
    };
    const hook = started(stateFile);
    const other = started(`${stateFile}.other`); // another run's hook: a longer path that starts the same
    const exited = once(hook, 'exit');
    await waitFor('both hooks started', async () => (await readFile(`/proc/${hook.pid}/environ`, 'utf8').catch(() => '')).includes('STATEFILE=') && (await readFile(`/proc/${other.pid}/environ`, 'utf8').catch(() => '')).includes('STATEFILE='));
    const discarded: string[] = [];
    assert.deepEqual(await stopOrphanHook(dir, 2000, async (release) => (discarded.push(release), true)), { stopped: hook.pid, release: 'rel-4' });
    assert.deepEqual(discarded, ['rel-4']);
    await exited;
    assert.equal(groupAlive(hook.pid!), false, 'the hook and its sleep are gone');
    assert.equal(groupAlive(other.pid!), true, 'the other run\'s hook lives on');
    // A record with no pid whose hook is not running any more (or never started) names its release all the same.
    await recordHook(dir, { release: 'rel-5', stateFile: path.join(dir, '.statefile-5.json') });
    assert.deepEqual(await stopOrphanHook(dir, 2000), { stopped: undefined, release: 'rel-5' });
  });

  it('leaves alone what a hook that ended left running, and a process that only shares the pid', async (t) => {
    const dir = await tempDir(t);
    // The hook leaves a daemon in its group, as hooks may do on purpose, and exits once recorded.
    const hook = spawn('sh', ['-c', 'sleep 30 & echo $!; read line'], { detached: true, stdio: ['pipe', 'pipe', 'ignore'] });
    t.after(() => signalGroup(hook.pid!, 'SIGKILL'));
    const daemonText = await new Promise<string>((resolve) => hook.stdout!.once('data', (data: Buffer) => resolve(data.toString())));
    const daemon = Number(daemonText.trim());
    await recordHook(dir, { release: 'rel-2', stateFile: path.join(dir, '.statefile-2.json'), pid: hook.pid! });
    const exited = once(hook, 'exit');
    hook.stdin!.end('\n');
    await exited;
    assert.deepEqual(await stopOrphanHook(dir, 2000), { stopped: undefined, release: 'rel-2' }, 'nothing stopped, but its release is named');
    assert.equal(await gone(daemon), false, 'the daemon lives on');
    // A record whose pid is now someone else's (here: this very test process), naming no valid release.
    await writeFile(path.join(dir, 'hook.json'), JSON.stringify({ pid: process.pid, startTime: '1', bootId: 'x', release: '../current' }));
    assert.deepEqual(await stopOrphanHook(dir, 2000), { stopped: undefined, release: undefined });
    await assert.rejects(readFile(path.join(dir, 'hook.json')), { code: 'ENOENT' }, 'a stale record is forgotten');
    await writeFile(path.join(dir, 'hook.json'), '{"pid": 12');
    assert.deepEqual(await stopOrphanHook(dir, 2000), { stopped: undefined, release: undefined }, 'a torn record names nothing');
  });

  it('keeps recording a release whose removal failed, until a later start removes it', async (t) => {
    const dir = await tempDir(t);
    const record = async (): Promise<unknown> => JSON.parse(await readFile(path.join(dir, 'hook.json'), 'utf8'));
    const hook = spawn('sh', ['-c', 'read line'], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    t.after(() => signalGroup(hook.pid!, 'SIGKILL'));
    await recordHook(dir, { release: 'rel-3', stateFile: path.join(dir, '.statefile-3.json'), pid: hook.pid! }, ['rel-1']);
    assert.deepEqual((await record() as { discard?: string[] }).discard, ['rel-1'], 'a new hook\'s record carries the earlier failure');
    const exited = once(hook, 'exit');
    hook.stdin!.end('\n');
    await exited;
    const stuck = new Set(['rel-1', 'rel-3']);
    const tried: string[] = [];
    const discard = async (release: string): Promise<boolean> => {
      tried.push(release);
      return !stuck.has(release);
    };
    assert.deepEqual(await stopOrphanHook(dir, 2000, discard), { stopped: undefined, release: 'rel-3' });
    assert.deepEqual(tried.sort(), ['rel-1', 'rel-3']);
    assert.deepEqual(await record(), { discard: ['rel-3', 'rel-1'] }, 'both stay recorded for the next start');
    stuck.delete('rel-3');
    tried.length = 0;
    assert.deepEqual(await stopOrphanHook(dir, 2000, discard), { stopped: undefined, release: undefined });
    assert.deepEqual(tried.sort(), ['rel-1', 'rel-3']);
    assert.deepEqual(await record(), { discard: ['rel-1'] }, 'only the one still there');
    stuck.clear();
    await stopOrphanHook(dir, 2000, discard);
    await assert.rejects(readFile(path.join(dir, 'hook.json')), { code: 'ENOENT' }, 'forgotten once every release is gone');
    await forgetHook(dir, ['rel-4']);
    assert.deepEqual(await record(), { discard: ['rel-4'] }, 'a hook that ended leaves only what could not be removed');
    await forgetHook(dir);
    await assert.rejects(readFile(path.join(dir, 'hook.json')), { code: 'ENOENT' });
  });
});

describe('writeStateFile', () => {
  it('writes the deploy-tools JSON to a private file', async (t) => {
    const dir = await tempDir(t);
    const file = await writeStateFile(dir, CONFIGURATION);
    assert.equal(path.dirname(file), dir);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const doc = JSON.parse(await readFile(file, 'utf8'));
    assert.equal(doc.Name, 'web');
    assert.deepEqual(doc.Layers.map((layer: { Name: string; Version: string; File: string }) => [layer.Name, layer.Version, layer.File]), [
      ['base', 'v1', `files/${BLOB}`],
      ['code', 'v2.3', `files/${'b'.repeat(64)}`],
    ]);
    assert.notEqual(await writeStateFile(dir, CONFIGURATION), file);
  });
});
