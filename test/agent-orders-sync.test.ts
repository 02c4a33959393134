/**
 * `sync` orders with the real rsync against local directories: a dry run lists changes and
 * touches nothing, a run syncs and reports, a slow run streams progress and is stopped by `kill`,
 * one run per group, and destinations outside the allow-list (by `..` or a symlink) are refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { orderHarness } from './helpers/agent-orders.ts';
import { tempDir } from './helpers/temp-dir.ts';
import { processesMentioning } from './helpers/processes.ts';

const RSYNC = '/usr/bin/rsync';


/** A source tree, an allowed area, and a config with groups over them. */
async function setup(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await tempDir(t);
  const src = path.join(dir, 'src');
  const srv = path.join(dir, 'srv');
  const outside = path.join(dir, 'outside');
  await mkdir(path.join(src, 'sub'), { recursive: true });
  await mkdir(path.join(src, '.git'), { recursive: true });
  await mkdir(path.join(srv, 'www'), { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(path.join(src, 'index.html'), 'new index\n');
  await writeFile(path.join(src, 'sub', 'page.html'), 'page\n');
  await writeFile(path.join(src, '.git', 'HEAD'), 'ref\n');
  await writeFile(path.join(srv, 'www', 'index.html'), 'old\n');
  await writeFile(path.join(srv, 'www', 'stale.html'), 'stale\n');
  await symlink(outside, path.join(srv, 'escape'));
  const big = path.join(dir, 'big');
  await mkdir(big);
  await writeFile(path.join(big, 'blob.bin'), randomBytes(4 * 1024 * 1024));
  const toml = `
[sync]
allowed_destinations = ["${srv}/"]
rsync = "${RSYNC}"

[sync.group.www]
source = "${src}/"
destination = "${srv}/www/"
exclude = [".git/"]
options = ["--delete"]

[sync.group.slow]
source = "${big}/"
destination = "${srv}/slow/"
options = ["--bwlimit=200"]

[sync.group.dotdot]
source = "${src}/"
destination = "${srv}/../outside/"

[sync.group.symlinked]
source = "${src}/"
destination = "${srv}/escape/www/"

[sync.group.elsewhere]
source = "${src}/"
destination = "${outside}/"

[sync.group.broken]
source = "${dir}/no-such-source/"
destination = "${srv}/broken/"
`;
  return { dir, src, srv, outside, harness: await orderHarness(dir, toml) };
}

describe('sync orders', () => {
  it('dry-run lists new, changed and deleted files and changes nothing', async (t) => {
    const { srv, harness } = await setup(t);
    const result = await harness.run({ verb: 'sync', group: 'www', mode: 'dry-run' });
    assert.equal(result.ok, true, result.message);
    const plan = result.content as { new: string[]; changed: string[]; deleted: string[]; files: number; bytes: number };
    assert.deepEqual(plan.new.sort(), ['sub/', 'sub/page.html']);
    assert.deepEqual(plan.changed, ['index.html']);
    assert.deepEqual(plan.deleted, ['stale.html']);
    assert.equal(plan.files, 4);
    assert.equal(plan.bytes, 'new index\n'.length + 'page\n'.length);
    assert.equal(await readFile(path.join(srv, 'www', 'index.html'), 'utf8'), 'old\n');
    assert.deepEqual((await readdir(path.join(srv, 'www'))).sort(), ['index.html', 'stale.html']);
  });

  it('run syncs, honours the exclude and --delete, and reports its completion', async (t) => {
    const { srv, harness } = await setup(t);
    const result = await harness.run({ verb: 'sync', group: 'www', mode: 'run' });
    assert.equal(result.ok, true, result.message);
    assert.equal(result.code, 'OK');
    const content = result.content as { exitCode: number; filesTransferred: number };
    assert.equal(content.exitCode, 0);
    assert.equal(content.filesTransferred, 2);
    assert.equal(await readFile(path.join(srv, 'www', 'index.html'), 'utf8'), 'new index\n');
    assert.deepEqual((await readdir(path.join(srv, 'www'))).sort(), ['index.html', 'sub']);
    const again = await harness.run({ verb: 'sync', group: 'www', mode: 'dry-run' });
    assert.equal((again.content as { files: number }).files, 0);
  });

  it('a slow run streams throttled progress, refuses a second run, and stops on kill', async (t) => {
    const { dir, harness } = await setup(t);
    const running = harness.send({ verb: 'sync', group: 'slow', mode: 'run' });
    while (running.progress.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
    const first = running.progress[0] as { group: string; percent: number; bytes: number };
    assert.equal(first.group, 'slow');
    assert.equal(typeof first.percent, 'number');
    const second = await harness.run({ verb: 'sync', group: 'slow', mode: 'run' });
    assert.deepEqual([second.ok, second.code], [false, 'ALREADY_RUNNING']);
    const killed = await harness.run({ verb: 'sync', group: 'slow', mode: 'kill' });
    assert.deepEqual([killed.ok, killed.code], [true, 'OK'], killed.message);
    const result = await running.result;
    assert.deepEqual([result.ok, result.code], [false, 'KILLED']);
    assert.equal(running.results.length, 1);
    // Throttled: no more than about two a second.
    assert.ok(running.progress.length <= Math.ceil(result.durationMs / 500) + 1, `${running.progress.length} progress messages in ${result.durationMs} ms`);
    // Every rsync process of the run (sender, receiver, generator) is gone.
    assert.deepEqual(await processesMentioning(`${dir}/big`), []);
    const none = await harness.run({ verb: 'sync', group: 'slow', mode: 'kill' });
    assert.deepEqual([none.ok, none.code], [false, 'NOT_RUNNING']);
  });

  it('refuses destinations that escape the allow-list by .., a symlink, or plainly', async (t) => {
    const { outside, harness } = await setup(t);
    for (const group of ['dotdot', 'symlinked', 'elsewhere']) {
      const result = await harness.run({ verb: 'sync', group, mode: 'run' });
      assert.deepEqual([result.ok, result.code], [false, 'PATH_NOT_ALLOWED'], group);
    }
    const symlinked = await harness.run({ verb: 'sync', group: 'symlinked', mode: 'dry-run' });
    assert.match(symlinked.message, /resolves to .*outside/);
    assert.deepEqual(await readdir(outside), []);
  });

  it('reports unknown groups and rsync failures', async (t) => {
    const { harness } = await setup(t);
    const unknown = await harness.run({ verb: 'sync', group: 'nope', mode: 'run' });
    assert.deepEqual([unknown.ok, unknown.code], [false, 'UNKNOWN_GROUP']);
    const broken = await harness.run({ verb: 'sync', group: 'broken', mode: 'run' });
    assert.equal(broken.ok, false);
    assert.equal(typeof broken.code, 'number');
    assert.match((broken.content as { stderr: string }).stderr, /no-such-source/);
  });
});
