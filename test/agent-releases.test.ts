/**
 * Release directories on real files: commit and reuse, the atomic `current` switch under a busy
 * reader, pruning, local rollback, state.json, and a kill -9 in the middle of an unpack.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';
import {
  commitRelease,
  discardRelease,
  HISTORY_LIMIT,
  markDeployed,
  prepareRelease,
  pruneReleases,
  readCurrent,
  readState,
  switchCurrent,
  writeState,
} from '../src/agent/releases/index.ts';
import { rollbackConfiguration, rollbackLocal } from '../src/agent/local-rollback.ts';
import { readHold } from '../src/agent/hold.ts';
import type { Configuration } from '../src/store/contract.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** A configuration revision whose id is `id`. */
function configuration(id: string, revision: number): Configuration {
  return {
    name: 'web',
    revision,
    seq: revision,
    id,
    layers: [{ component: 'code', version: `v${revision}`, blob: 'a'.repeat(64), size: 1, createdAt: '2024-01-01T00:00:00.000Z' }],
    updatedAt: '2024-01-01T00:00:00.000Z',
    updatedBy: 'test',
  };
}

/** Creates a complete release the way the agent does (temp dir, commit) holding `marker`. */
async function makeRelease(confDir: string, id: string): Promise<string> {
  const { tempDir: temp, finalDir } = await prepareRelease(confDir, id);
  await mkdir(temp);
  await writeFile(path.join(temp, 'marker'), id);
  await commitRelease(temp, finalDir);
  return finalDir;
}

/** Deploys `ids` in order: release, switch, record in state. */
async function deploy(confDir: string, ids: string[]): Promise<void> {
  for (const [index, id] of ids.entries()) {
    if (!existsSync(path.join(confDir, 'releases', id))) await makeRelease(confDir, id);
    await switchCurrent(confDir, id);
    await writeState(confDir, markDeployed(await readState(confDir), configuration(id, index + 1)));
  }
}

describe('releases', () => {
  it('commits a release under its id, and keeps an existing complete one instead of a second copy', async (t) => {
    const confDir = await tempDir(t);
    const first = await prepareRelease(confDir, 'abc');
    assert.match(path.basename(first.tempDir), /^\.tmp-abc-[0-9a-f]+$/);
    assert.equal(existsSync(first.tempDir), false, 'the unpacker creates the temp dir');
    await mkdir(first.tempDir);
    await writeFile(path.join(first.tempDir, 'marker'), 'first');
    assert.deepEqual(await commitRelease(first.tempDir, first.finalDir), { reused: false });
    const second = await prepareRelease(confDir, 'abc');
    await mkdir(second.tempDir);
    await writeFile(path.join(second.tempDir, 'marker'), 'second');
    assert.deepEqual(await commitRelease(second.tempDir, second.finalDir), { reused: true });
    assert.equal(await readFile(path.join(first.finalDir, 'marker'), 'utf8'), 'first');
    assert.deepEqual(await readdir(path.join(confDir, 'releases')), ['abc']);
    await assert.rejects(prepareRelease(confDir, '../evil'), { code: 'BAD_REQUEST' });
  });

  it('switches current atomically: a busy reader always finds a complete release', async (t) => {
    const confDir = await tempDir(t);
    await makeRelease(confDir, 'one');
    await makeRelease(confDir, 'two');
    assert.equal(await readCurrent(confDir), undefined);
    await switchCurrent(confDir, 'one');
    let stop = false;
    let reads = 0;
    const reader = (async () => {
      while (!stop) {
        const marker = await readFile(path.join(confDir, 'current', 'marker'), 'utf8');
        assert.ok(marker === 'one' || marker === 'two');
        reads += 1;
      }
    })();
    for (let i = 0; i < 300; i++) await switchCurrent(confDir, i % 2 === 0 ? 'two' : 'one');
    stop = true;
    await reader;
    assert.ok(reads > 0);
    assert.equal(await readCurrent(confDir), 'one');
    assert.deepEqual((await readdir(confDir)).sort(), ['current', 'releases']);
    await assert.rejects(switchCurrent(confDir, 'missing'), /not a release directory/);
  });

  it('prunes beyond the newest N, never current or protected ones, and removes crash leftovers', async (t) => {
    const confDir = await tempDir(t);
    await makeRelease(confDir, 'stray'); // not in history: counts as oldest
    await utimes(path.join(confDir, 'releases', 'stray'), new Date(0), new Date(0));
    await deploy(confDir, ['r1', 'r2', 'r3', 'r4', 'r5']);
    await switchCurrent(confDir, 'r1'); // e.g. after local rollbacks
    await mkdir(path.join(confDir, 'releases', '.tmp-r6-deadbeef'));
    await writeFile(path.join(confDir, 'releases', '.tmp-r6-deadbeef', 'half'), 'x');
    await symlink('releases/r2', path.join(confDir, 'current.tmp-abcdef'));
    const result = await pruneReleases(confDir, 2, ['r2']);
    assert.deepEqual(result.removed.sort(), ['r3', 'stray']);
    assert.deepEqual(result.leftovers.sort(), ['.tmp-r6-deadbeef', 'current.tmp-abcdef']);
    assert.deepEqual((await readdir(path.join(confDir, 'releases'))).sort(), ['r1', 'r2', 'r4', 'r5']);
    assert.equal(await readCurrent(confDir), 'r1');
  });

  it('discards a release a hook left half-changed, but never the current one, by link or by state', async (t) => {
    const confDir = await tempDir(t);
    await deploy(confDir, ['r1', 'r2']);
    await makeRelease(confDir, 'r3');
    assert.equal(await discardRelease(confDir, 'r3'), true);
    assert.deepEqual((await readdir(path.join(confDir, 'releases'))).sort(), ['r1', 'r2'], 'removed whole, no debris left');
    assert.equal(await discardRelease(confDir, 'r3'), false, 'a release that is not there');
    assert.equal(await discardRelease(confDir, 'r2'), false, 'current by the link');
    await switchCurrent(confDir, 'r1'); // a local rollback: state.json still names r2 as current
    assert.equal(await discardRelease(confDir, 'r2'), false, 'current by state.json');
    assert.equal(await discardRelease(confDir, 'r1'), false);
    assert.deepEqual((await readdir(path.join(confDir, 'releases'))).sort(), ['r1', 'r2']);
    await assert.rejects(discardRelease(confDir, '../r1'), /cannot name a release directory/);
  });

  it('rolls back locally to the previous releases, fast, and says when there is none', async (t) => {
    const confDir = await tempDir(t);
    await deploy(confDir, ['a', 'b', 'c']);
    const started = performance.now();
    assert.deepEqual(await rollbackLocal(confDir), { from: 'c', to: 'b' });
    assert.ok(performance.now() - started < 500);
    assert.equal(await readFile(path.join(confDir, 'current', 'marker'), 'utf8'), 'b');
    const state = await readState(confDir);
    assert.equal(state?.current?.id, 'b');
    assert.equal(state?.current?.revision, 2);
    assert.deepEqual(state?.history.map((record) => record.id), ['a', 'b', 'c']);
    assert.deepEqual(await rollbackLocal(confDir), { from: 'b', to: 'a' });
    await assert.rejects(rollbackLocal(confDir), { code: 'NOTHING_TO_ROLL_BACK' });
    assert.equal(await readCurrent(confDir), 'a');
  });

  it('holds the release a local rollback left, and keeps the earlier hold when there is nothing to roll back to', async (t) => {
    const dir = await tempDir(t);
    const confDir = path.join(dir, 'web');
    await deploy(confDir, ['a', 'b']);
    assert.deepEqual(await rollbackConfiguration(dir), { configuration: 'web', from: 'b', to: 'a' });
    assert.equal(await readHold(confDir), 'b', 'the agent will not roll forward to b again');
    await assert.rejects(rollbackConfiguration(dir, 'web'), { code: 'NOTHING_TO_ROLL_BACK' });
    assert.equal(await readHold(confDir), 'b', 'a refused rollback leaves the hold as it was');
    assert.equal(await readCurrent(confDir), 'a');
    const fresh = path.join(dir, 'other');
    await deploy(fresh, ['x']);
    await assert.rejects(rollbackConfiguration(dir, 'other'), { code: 'NOTHING_TO_ROLL_BACK' });
    assert.equal(await readHold(fresh), undefined, 'no hold where there was none');
  });

  it('skips pruned releases when rolling back', async (t) => {
    const confDir = await tempDir(t);
    await deploy(confDir, ['a', 'b', 'c']);
    await pruneReleases(confDir, 1, ['a']);
    assert.deepEqual(await rollbackLocal(confDir), { from: 'c', to: 'a' });
  });

  it('keeps state.json history bounded', async (t) => {
    const confDir = await tempDir(t);
    let state = undefined;
    for (let i = 1; i <= HISTORY_LIMIT + 5; i++) state = markDeployed(state, configuration(`id${i}`, i));
    assert.ok(state);
    await writeState(confDir, state);
    const read = await readState(confDir);
    assert.equal(read?.history.length, HISTORY_LIMIT);
    assert.equal(read?.history.at(-1)?.id, `id${HISTORY_LIMIT + 5}`);
    assert.equal(read?.current?.id, `id${HISTORY_LIMIT + 5}`);
    assert.equal(read?.configuration, 'web');
    assert.equal(await readState(path.join(confDir, 'nope')), undefined);
  });

  it('a kill -9 during an unpack leaves current on a complete release; prune clears the debris', async (t) => {
    const confDir = await tempDir(t);
    await deploy(confDir, ['old']);
    // One 200 MB file of zeros: a small layer that takes a while to write.
    const body = Buffer.alloc(200 * 1024 * 1024);
    const header = Buffer.alloc(512);
    new Header({ path: 'big', mode: 0o644, size: body.length, type: 'File', mtime: new Date(0) }).encode(header);
    const layer = path.join(confDir, 'layer.tgz');
    await writeFile(layer, gzipSync(Buffer.concat([header, body, Buffer.alloc(1024)])));
    const script = `
      import { prepareRelease, commitRelease, switchCurrent } from ${JSON.stringify(path.resolve('src/agent/releases/index.ts'))};
      import { unpackLayers } from ${JSON.stringify(path.resolve('src/agent/unpack/index.ts'))};
      const { tempDir, finalDir } = await prepareRelease(${JSON.stringify(confDir)}, 'new');
      await unpackLayers({ layers: [{ name: 'code', path: ${JSON.stringify(layer)} }], target: tempDir, limits: { maxFiles: 10, maxBytes: 1e9 } });
      await commitRelease(tempDir, finalDir);
      await switchCurrent(${JSON.stringify(confDir)}, 'new');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
    const releases = path.join(confDir, 'releases');
    let unpacking = false;
    for (let i = 0; i < 1000 && !unpacking; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      unpacking = (await readdir(releases)).some((name) => name.startsWith('.tmp-'));
    }
    child.kill('SIGKILL');
    assert.ok(unpacking, 'the child must have started unpacking before it was killed');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(await readCurrent(confDir), 'old');
    assert.equal(await readFile(path.join(confDir, 'current', 'marker'), 'utf8'), 'old');
    assert.equal(existsSync(path.join(releases, 'new')), false, 'an unfinished release never gets its final name');
    const { leftovers } = await pruneReleases(confDir, 5);
    assert.equal(leftovers.length, 1);
    assert.deepEqual(await readdir(releases), ['old']);
  });
});
