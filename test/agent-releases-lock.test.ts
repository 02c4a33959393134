/**
 * The releases lock (src/agent/releases/releases-lock.ts) on real files and processes: a local
 * rollback waits while another process holds it, fails with one line when it stays held, gets it
 * at once from a holder killed with SIGKILL, and pruning beside rollbacks never removes the
 * release `current` points at.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isStrataError } from '../src/core/errors.ts';
import { describeFailure } from '../src/cli/run.ts';
import { rollbackConfiguration, rollbackLocal } from '../src/agent/local-rollback.ts';
import { readHold } from '../src/agent/hold.ts';
import { commitRelease, markDeployed, prepareRelease, pruneReleases, readCurrent, readState, switchCurrent, writeState } from '../src/agent/releases/index.ts';
import type { Configuration } from '../src/store/contract.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** Deploys `ids` in order the way the agent records them: release, switch, state. */
async function deploy(confDir: string, ids: string[]): Promise<void> {
  for (const [index, id] of ids.entries()) {
    const { tempDir: temp, finalDir } = await prepareRelease(confDir, id);
    await mkdir(temp);
    await writeFile(path.join(temp, 'marker'), id);
    await commitRelease(temp, finalDir);
    await switchCurrent(confDir, id);
    const configuration: Configuration = {
      name: 'web', revision: index + 1, seq: index + 1, id, updatedAt: '2024-01-01T00:00:00.000Z', updatedBy: 'test',
      layers: [{ component: 'code', version: `v${index + 1}`, blob: 'a'.repeat(64), size: 1, createdAt: '2024-01-01T00:00:00.000Z' }],
    };
    await writeState(confDir, markDeployed(await readState(confDir), configuration));
  }
}

/**
 * One process holding CONFDIR's releases lock for `seconds` (a shell that flocks its fd 9 with
 * util-linux's `flock`, then becomes `sleep`), resolved once it holds it.
 */
async function holdLock(t: { after: (fn: () => void) => void }, confDir: string, seconds: number): Promise<ChildProcess> {
  const script = 'exec 9>>"$1" && flock --exclusive 9 && echo locked && exec sleep "$2"';
  const holder = spawn('sh', ['-c', script, 'sh', path.join(confDir, 'releases.lock'), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => holder.kill('SIGKILL'));
  const [line] = (await once(holder.stdout!, 'data')) as [Buffer];
  assert.equal(line.toString().trim(), 'locked');
  return holder;
}

describe('releases lock', () => {
  it('makes a local rollback wait for another holder, and fail with one line when the lock stays held', async (t) => {
    const dir = await tempDir(t);
    const confDir = path.join(dir, 'web');
    await deploy(confDir, ['a', 'b', 'c']);

    const stuck = await holdLock(t, confDir, 30);
    const started = performance.now();
    const error = await rollbackConfiguration(dir, 'web', 500).then(() => assert.fail('the rollback went ahead under a held lock'), (caught: unknown) => caught);
    assert.ok(performance.now() - started >= 450, 'it waited for the lock');
    assert.ok(isStrataError(error));
    const { line } = describeFailure(error, false);
    assert.match(line, /^the releases of .*web stayed locked by another process \(the agent or another `strata agent rollback`\) for 0\.5 s; try again$/);
    assert.equal(await readCurrent(confDir), 'c', 'nothing switched');
    assert.equal(await readHold(confDir), undefined, 'the hold it wrote first is taken back');

    stuck.kill('SIGKILL');
    await once(stuck, 'exit');
    // A held lock would make this fail after its 0.5 s wait, as above.
    assert.deepEqual(await rollbackConfiguration(dir, 'web', 500), { configuration: 'web', from: 'c', to: 'b' }, 'the kernel dropped the killed holder\'s lock');

    // The test lets go of the lock itself, so the wait is proven whatever the machine's load.
    const holder = await holdLock(t, confDir, 30);
    let settled = false;
    const waiting = rollbackLocal(confDir, 30_000).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(settled, false, 'the rollback waits while the lock is held');
    assert.equal(await readCurrent(confDir), 'b', 'and switches nothing meanwhile');
    holder.kill('SIGKILL');
    assert.deepEqual(await waiting, { from: 'b', to: 'a' });
    assert.equal(await readFile(path.join(confDir, 'current', 'marker'), 'utf8'), 'a');
  });

  it('never lets a prune remove the release a concurrent local rollback switches to', async (t) => {
    const dir = await tempDir(t);
    for (let round = 0; round < 25; round++) {
      const confDir = path.join(dir, `web-${round}`);
      await deploy(confDir, ['r1', 'r2', 'r3', 'r4']);
      // The agent just deployed r4 and keeps one release; a rollback to r3 runs at the same moment.
      const [rollback, prune] = await Promise.allSettled([rollbackLocal(confDir), pruneReleases(confDir, 1, ['r4'])]);
      assert.equal(prune.status, 'fulfilled', String(prune.status === 'rejected' ? prune.reason : ''));
      if (rollback.status === 'rejected') assert.equal((rollback.reason as { code?: string }).code, 'NOTHING_TO_ROLL_BACK', 'only when the prune came first');
      const current = await readCurrent(confDir);
      assert.ok(current !== undefined);
      assert.equal((await stat(path.join(confDir, 'current')).catch(() => undefined))?.isDirectory(), true, `round ${round}: current points at ${current}, which is gone`);
      assert.equal(await readFile(path.join(confDir, 'current', 'marker'), 'utf8'), current);
      assert.equal(current, rollback.status === 'fulfilled' ? 'r3' : 'r4');
    }
  });
});
