/**
 * Hook faults, end to end: a real server and real agent processes on loopback. A hook that does
 * not exist (HOOK_MISSING until the agent restarts with a real one), a hook that outlives
 * --hook-timeout (killed, HOOK_TIMEOUT with its output), a hook left running by an agent killed
 * with SIGKILL (stopped by the next start, children included, whether or not its pid was
 * recorded), and a failed hook's changes (the release is unpacked afresh, and one that cannot be
 * removed is never reused). In every case the previous release stays current.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { currentId, tempReleases, waitFor } from './helpers/strata-agent.ts';
import { agentFixture, alive, read } from './helpers/agent-fixture.ts';
import { writeScript } from './helpers/service-release.ts';

const run = promisify(execFile);

describe('agent hook faults against a real server', () => {
  const fx = agentFixture({ prefix: 'strata-agent-hook-faults-' });
  const { ok, push, showconf, reported, agent } = fx;

  it('fails with HOOK_MISSING while the hook does not exist, and deploys once restarted with a real one', async () => {
    await push('hooked', 'v1', { 'h.txt': 'h1' });
    await ok(['addconf', '--name', 'hooked', '--layer', 'hooked:v1']);
    const hook = await writeScript(path.join(fx.root, 'real-hook.sh'), '#!/bin/sh\necho "real hook for $NEWID"\n');
    const dir = path.join(fx.root, 'agent-hook');
    const confDir = path.join(dir, 'hooked');
    let running = agent({ server: fx.server, dir, name: 'hook-1', token: fx.token, args: ['--track', 'hooked', '--hook', hook] });
    assert.equal(await waitFor('v1 deployed', () => read(path.join(confDir, 'current', 'h.txt'))), 'h1');
    const v1 = await currentId(confDir);
    await running.stop();

    const missing = path.join(fx.root, 'no-such-dir', 'hook.sh');
    running = agent({ dir, args: ['--hook', missing] });
    await push('hooked', 'v2', { 'h.txt': 'h2' });
    await ok(['changeconf', '--name', 'hooked', '--component', 'hooked', '--version', 'v2']);
    const failed = await reported('hook-1', 'hooked', (s) => s.phase === 'failed');
    assert.equal(failed.error?.code, 'HOOK_MISSING', JSON.stringify(failed));
    const v2 = (await showconf('hooked')).id;
    assert.ok(await stat(path.join(confDir, 'releases', v2)), 'a hook that never ran changed nothing: its release is kept for the retry');
    assert.ok(failed.error?.message.includes(missing), `the message names the hook: ${failed.error?.message}`);
    assert.equal(await currentId(confDir), v1, 'the old release stays current');
    assert.equal(await read(path.join(confDir, 'current', 'h.txt')), 'h1');
    assert.ok(alive(running.process), 'a missing hook does not stop the agent');
    await running.stop();

    running = agent({ dir, args: ['--hook', hook] });
    assert.equal(await waitFor('v2 deployed with the real hook', async () => (await read(path.join(confDir, 'current', 'h.txt'))) === 'h2' && 'h2'), 'h2');
    const deployed = await reported('hook-1', 'hooked', (s) => s.phase === 'deployed' && (s as { currentRevision?: number }).currentRevision === 2);
    assert.match((deployed as { hookOutput?: string }).hookOutput ?? '', /real hook for [0-9a-f]{64}/);
    await running.stop();
  });

  it('kills a hook that outlives --hook-timeout: HOOK_TIMEOUT with its output, the old release current, the new one removed', async () => {
    const dir = path.join(fx.root, 'agent-timeout');
    const confDir = path.join(dir, 'slowhook');
    const pidFile = path.join(fx.root, 'timeout-hook.pid');
    // Says something, then hangs far past the timeout whenever the release asks it to.
    const hook = await writeScript(path.join(fx.root, 'timeout-hook.sh'), `#!/bin/sh\necho "hook started for r$STRATA_REVISION"\nif [ -f "$NEWROOT/hang" ]; then\n  echo $$ > ${JSON.stringify(pidFile)}\n  echo "hanging now"\n  sleep 600\nfi\nexit 0\n`);
    await push('slowhook', 'v1', { 'v.txt': 'one' });
    await ok(['addconf', '--name', 'slowhook', '--layer', 'slowhook:v1']);
    // A long retry wait: the timed-out release is not unpacked and hooked again while the test looks.
    const running = agent({ server: fx.server, dir, name: 'timeout-1', token: fx.token, args: ['--track', 'slowhook', '--hook', hook, '--hook-timeout', '1s', '--retry-base', '60s', '--retry-cap', '60s'] });
    assert.equal(await waitFor('v1 deployed', () => read(path.join(confDir, 'current', 'v.txt'))), 'one');
    const v1 = await currentId(confDir);

    await push('slowhook', 'v2', { 'v.txt': 'two', hang: 'yes' });
    await ok(['changeconf', '--name', 'slowhook', '--component', 'slowhook', '--version', 'v2']);
    const v2 = (await showconf('slowhook')).id;
    const hookPid = Number(await waitFor('the hook hanging', () => read(pidFile)));
    const hanging = Date.now();
    const failed = await reported('timeout-1', 'slowhook', (s) => s.phase === 'failed', 15_000);
    const elapsed = Date.now() - hanging;
    assert.equal(failed.error?.code, 'HOOK_TIMEOUT', JSON.stringify(failed));
    assert.match(failed.error?.message ?? '', /^hook timed out after 1s and was killed$/);
    assert.ok(elapsed < 10_000, `stopped about a second into its hang, not left to finish (reported after ${elapsed} ms)`);
    assert.match(failed.hookOutput ?? '', /hook started for r2\nhanging now/, 'the output so far is reported');
    const { processStat } = await import('../src/agent/service/proc.ts');
    const hookProcess = await processStat(hookPid);
    assert.ok(hookProcess === undefined || hookProcess.state === 'Z', `the hook process ${hookPid} is gone`);
    assert.equal(await currentId(confDir), v1, 'the old release stays current');
    assert.equal(await read(path.join(confDir, 'current', 'v.txt')), 'one');
    assert.equal(await stat(path.join(confDir, 'releases', v2)).catch(() => undefined), undefined, 'the release the hook was killed in is removed');
    assert.deepEqual(await tempReleases(confDir), []);
    assert.match(running.logs(), /removed the release: its hook did not succeed/);
    await running.stop();
  });

  // An agent killed between the hook's spawn and the record of its pid leaves the record written
  // before the spawn, with the hook's STATEFILE: the restarted agent finds the hook by that.
  for (const recorded of ['with its pid', 'before its pid was known'] as const) it(`stops the hook an agent killed with SIGKILL left running (recorded ${recorded}), children included, before it runs a hook again`, async () => {
    const conf = recorded === 'with its pid' ? 'orphan' : 'orphan-early';
    const dir = path.join(fx.root, `agent-${conf}`);
    const pids = path.join(fx.root, `${conf}-hook.pids`);
    // Hangs, with a child of its own, whenever the release asks it to; records both pids.
    const hook = await writeScript(path.join(fx.root, 'orphan-hook.sh'), `#!/bin/sh\nif [ -f "$NEWROOT/hang" ]; then\n  echo half-done > "$NEWROOT/hook-was-here"\n  echo $$ >> ${JSON.stringify(pids)}\n  sleep 600 &\n  echo $! >> ${JSON.stringify(pids)}\n  wait\nfi\nexit 0\n`);
    await push(conf, 'v1', { 'v.txt': 'one', hang: 'yes' });
    await ok(['addconf', '--name', conf, '--layer', `${conf}:v1`]);
    const v1 = (await showconf(conf)).id;
    let running = agent({ server: fx.server, dir, name: `${conf}-1`, token: fx.token, args: ['--track', conf, '--hook', hook] });
    const hookPids = await waitFor('the hook and its child running', async () => {
      const list = ((await read(pids)) ?? '').trim().split('\n').filter(Boolean).map(Number);
      return list.length === 2 ? list : undefined;
    });
    const record = path.join(dir, conf, 'hook.json');
    await waitFor('the hook recorded', async () => JSON.parse((await read(record)) ?? '{}').pid === hookPids[0]);
    await running.stop('SIGKILL');
    if (recorded === 'before its pid was known') {
      // What the record held between the spawn and the pid, which a kill cannot be timed to hit.
      const { pid, startTime, ...early } = JSON.parse((await read(record))!) as Record<string, unknown>;
      assert.ok(pid !== undefined && startTime !== undefined && typeof early['stateFile'] === 'string', JSON.stringify(early));
      await writeFile(record, JSON.stringify(early));
    }
    const { processStat } = await import('../src/agent/service/proc.ts');
    const gone = async (pid: number): Promise<boolean> => {
      const stat = await processStat(pid);
      return stat === undefined || stat.state === 'Z';
    };
    for (const pid of hookPids) assert.equal(await gone(pid), false, `hook process ${pid} outlived the agent`);

    await push(conf, 'v2', { 'v.txt': 'two' });
    await ok(['changeconf', '--name', conf, '--component', conf, '--version', 'v2']);
    running = agent({ dir, args: ['--hook', hook] });
    await waitFor('v2 deployed', async () => (await read(path.join(dir, conf, 'current', 'v.txt'))) === 'two');
    for (const pid of hookPids) assert.equal(await gone(pid), true, `hook process ${pid} stopped by the restarted agent`);
    assert.match(running.logs(), /stopped a hook an earlier agent left running/);
    assert.match(running.logs(), /removed the release: an earlier agent's hook changed it and did not succeed/);
    assert.equal(await stat(path.join(dir, conf, 'releases', v1)).catch(() => undefined), undefined, 'the release that hook was changing is gone');
    assert.equal(await stat(record).catch(() => undefined), undefined, 'no hook recorded once none runs');
    await running.stop();
  });

  it('unpacks afresh after a hook that failed: the retry never sees what the failed hook changed', async () => {
    const dir = path.join(fx.root, 'agent-dirty');
    const runs = path.join(fx.root, 'dirty-hook.runs');
    // Changes the release, then fails, the first time only.
    const hook = await writeScript(path.join(fx.root, 'dirty-hook.sh'), `#!/bin/sh\necho run >> ${JSON.stringify(runs)}\necho changed >> "$NEWROOT/v.txt"\n[ "$(wc -l < ${JSON.stringify(runs)})" -ge 2 ] || exit 1\nexit 0\n`);
    await push('dirty', 'v1', { 'v.txt': 'one\n' });
    await ok(['addconf', '--name', 'dirty', '--layer', 'dirty:v1']);
    const running = agent({ server: fx.server, dir, name: 'dirty-1', token: fx.token, args: ['--track', 'dirty', '--hook', hook, '--retry-base', '100ms', '--retry-cap', '1s'] });
    await waitFor('v1 deployed on the retry', async () => (await currentId(path.join(dir, 'dirty'))) !== undefined);
    assert.equal(((await read(runs)) ?? '').split('\n').filter(Boolean).length, 2, 'one failed run, one that succeeded');
    assert.equal(await read(path.join(dir, 'dirty', 'current', 'v.txt')), 'one\nchanged\n', 'only the successful run\'s change is in the release');
    assert.match(running.logs(), /removed the release: its hook did not succeed/);
    await running.stop();
  });

  it('never reuses a release a failed hook changed that cannot be removed, and removes it at the next start', async (t) => {
    // Root may not rename an immutable directory; anyone else may not rename in a directory it cannot write.
    const root0 = process.getuid?.() === 0;
    if (root0) {
      const probe = await mkdtemp(path.join(fx.root, 'chattr-'));
      const usable = await run('chattr', ['+i', probe]).then(() => run('chattr', ['-i', probe])).then(() => true, () => false);
      if (!usable) return t.skip('running as root where chattr +i does not work, so nothing can make a release undeletable');
    }
    const dir = path.join(fx.root, 'agent-undeletable');
    const releases = path.join(dir, 'undel', 'releases');
    const runs = path.join(fx.root, 'undel-hook.runs');
    // Changes the release, makes it undeletable and fails, the first time only.
    const pin = root0 ? 'chattr +i "$NEWROOT"' : 'chmod 555 "$(dirname "$NEWROOT")"';
    const hook = await writeScript(path.join(fx.root, 'undel-hook.sh'), `#!/bin/sh\necho run >> ${JSON.stringify(runs)}\necho changed >> "$NEWROOT/v.txt"\nif [ "$(wc -l < ${JSON.stringify(runs)})" -lt 2 ]; then ${pin}; exit 1; fi\nexit 0\n`);
    await push('undel', 'v1', { 'v.txt': 'one\n' });
    await ok(['addconf', '--name', 'undel', '--layer', 'undel:v1']);
    const v1 = (await showconf('undel')).id;
    const unpin = async (): Promise<void> => {
      await (root0 ? run('chattr', ['-i', path.join(releases, v1)]) : run('chmod', ['755', releases])).catch(() => undefined);
    };
    t.after(unpin);
    const args = ['--track', 'undel', '--hook', hook, '--retry-base', '100ms', '--retry-cap', '500ms'];
    let running = agent({ server: fx.server, dir, name: 'undel-1', token: fx.token, args });
    const refused = await reported('undel-1', 'undel', (s) => s.error?.code === 'RELEASE_NOT_REMOVED');
    assert.match(refused.error!.message, /^the release a failed hook changed cannot be removed, and is not reused: /);
    assert.match(running.logs(), /could not remove a release a hook may have changed/);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // several retries
    assert.equal(((await read(runs)) ?? '').split('\n').filter(Boolean).length, 1, 'no hook ran again on the changed release');
    assert.equal(await currentId(path.join(dir, 'undel')), undefined);
    assert.deepEqual(JSON.parse((await read(path.join(dir, 'undel', 'hook.json'))) ?? '{}'), { discard: [v1] }, 'recorded for the next start');
    await running.stop('SIGKILL');

    await unpin();
    running = agent({ dir, args });
    await waitFor('v1 deployed after the restart', async () => (await currentId(path.join(dir, 'undel'))) === v1);
    assert.match(running.logs(), /removed the release: an earlier agent's hook changed it and did not succeed/);
    assert.equal(await read(path.join(dir, 'undel', 'current', 'v.txt')), 'one\nchanged\n', 'unpacked afresh: only the successful run\'s change');
    assert.equal(await stat(path.join(dir, 'undel', 'hook.json')).catch(() => undefined), undefined, 'nothing left to remove, nothing recorded');
    await running.stop();
  });
});
