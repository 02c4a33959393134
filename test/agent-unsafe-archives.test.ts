/**
 * Archives the agent must refuse, end to end: a real server and real agent processes on loopback.
 * One archive per unpack rule, put straight into the server's store because its upload inspection
 * refuses each; an archive that is only unsafe across layers, which the upload cannot see; and
 * releases over the agent's --max-files and --max-unpacked. Each is reported failed naming the
 * layer and the entry, nothing lands outside the release tree, and the previous release stays current.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { runStrata } from './helpers/strata-server.ts';
import { currentId, tempReleases, waitFor, type ReportedConfiguration } from './helpers/strata-agent.ts';
import { agentFixture, read } from './helpers/agent-fixture.ts';
import { tarBytes, type TarInput } from './helpers/tar-bytes.ts';

describe('archives an agent refuses, against a real server', () => {
  const fx = agentFixture({ prefix: 'strata-agent-unsafe-' });
  const { ok, push, reported, agent } = fx;

  it('refuses at unpack an archive that is only unsafe across layers, naming the entry and the layer', async () => {
    await push('unsafe', 'v1', { 'safe.txt': 'safe' });
    await ok(['addconf', '--name', 'unsafe', '--layer', 'unsafe:v1']);
    const dir = path.join(fx.root, 'agent-unsafe');
    const confDir = path.join(dir, 'unsafe');
    const running = agent({ server: fx.server, dir, name: 'unsafe-1', token: fx.token, args: ['--track', 'unsafe'] });
    assert.equal(await waitFor('v1 deployed', () => read(path.join(confDir, 'current', 'safe.txt'))), 'safe');
    const v1 = await currentId(confDir);

    // Layer A: a directory and a symlink to it, safe on its own.
    const a = path.join(fx.root, 'src', 'layer-a');
    await mkdir(path.join(a, 'sub'), { recursive: true });
    await symlink('sub', path.join(a, 'link'));
    await tar.create({ gzip: true, portable: true, cwd: a, file: path.join(fx.root, 'layer-a.tar.gz') }, ['sub', 'link']);
    // Layer B: a file under "link/" (no directory entry for it), also safe on its own.
    const b = path.join(fx.root, 'src', 'layer-b');
    await mkdir(path.join(b, 'link'), { recursive: true });
    await writeFile(path.join(b, 'link', 'evil.txt'), 'written through a symlink');
    await tar.create({ gzip: true, portable: true, cwd: b, file: path.join(fx.root, 'layer-b.tar.gz') }, ['link/evil.txt']);
    await ok(['addver', '--name', 'layer-a', '--version', 'v1', '--file', path.join(fx.root, 'layer-a.tar.gz')]);
    await ok(['addver', '--name', 'layer-b', '--version', 'v1', '--file', path.join(fx.root, 'layer-b.tar.gz')]);

    await ok(['addconf', '--force', '--name', 'unsafe', '--layer', 'layer-a:v1', '--layer', 'layer-b:v1']);
    const failed = await reported('unsafe-1', 'unsafe', (s) => s.phase === 'failed');
    assert.equal(failed.error?.code, 'UNSAFE_ARCHIVE_ENTRY', JSON.stringify(failed));
    assert.match(failed.error?.message ?? '', /layer "layer-b"/, 'the message names the layer');
    assert.match(failed.error?.message ?? '', /link\/evil\.txt/, 'and the entry');
    assert.match(failed.error?.message ?? '', /symlink/);
    assert.equal(await currentId(confDir), v1, 'the old release stays current');
    assert.equal(await stat(path.join(confDir, 'releases', 'sub', 'evil.txt')).catch(() => undefined), undefined);
    await running.stop();
    assert.deepEqual(await tempReleases(confDir), [], 'the refused tree was removed');
  });

  describe('archives that break an unpack rule, each refused at the agent', () => {
    const dir = (): string => path.join(fx.root, 'agent-rules');
    const confDir = (): string => path.join(dir(), 'rules');
    let v1: string | undefined;

    /**
     * Puts `bytes` into the server's store as a blob without the upload's inspection, which would
     * refuse them: a store written by an older server, another tool or an intruder. The SQLite
     * store's metadata is WAL-mode SQLite with a busy timeout, so a second process may add a row.
     */
    async function storeUninspected(bytes: Buffer): Promise<string> {
      const store = await openSqliteStore({ dir: path.join(fx.server.dataDir, 'store') });
      try {
        return (await store.putBlob(Readable.from([bytes]))).sha256;
      } finally {
        await store.close();
      }
    }

    /** Moves `rules` to `version` and waits for the agent's report on that revision. */
    async function deployRules(version: string): Promise<ReportedConfiguration> {
      const changed = await ok(['changeconf', '--name', 'rules', '--component', 'rules', '--version', version]);
      const revision = Number(/^configuration rules revision (\d+):/.exec(changed)?.[1]);
      assert.ok(revision > 1, changed);
      return reported('rules-1', 'rules', (s) => s.desiredRevision === revision && (s.phase === 'failed' || s.phase === 'deployed'));
    }

    /** The old release is current and whole, and nothing else is in `releases/` (no half-built tree, nothing that escaped). */
    async function onlyTheOldRelease(): Promise<void> {
      assert.equal(await currentId(confDir()), v1, 'the old release stays current');
      assert.equal(await read(path.join(confDir(), 'current', 'safe.txt')), 'safe');
      assert.deepEqual(await readdir(path.join(confDir(), 'releases')), [v1]);
    }

    before(async () => {
      await push('rules', 'v1', { 'safe.txt': 'safe' });
      await ok(['addconf', '--name', 'rules', '--layer', 'rules:v1']);
      // A long retry wait keeps a refused revision from being unpacked again while the test looks;
      // each newer revision is tried at once regardless. The limits are for the last case.
      agent({ server: fx.server, dir: dir(), name: 'rules-1', token: fx.token, args: ['--track', 'rules', '--retry-base', '60s', '--retry-cap', '60s', '--max-files', '20', '--max-unpacked', '64KiB'] });
      assert.equal(await waitFor('v1 deployed', () => read(path.join(confDir(), 'current', 'safe.txt'))), 'safe');
      v1 = await currentId(confDir());
    });

    // Each archive starts with a harmless file, so the refusal comes with a half-built tree to remove.
    // `victim`: a file outside the tree that the entry would reach, put there first so an escape shows.
    const rules: { name: string; entries: () => TarInput[]; message: RegExp; victim?: () => string }[] = [
      {
        name: 'an absolute path',
        entries: () => [{ path: 'ok.txt', body: 'x' }, { path: path.join(fx.root, 'escaped-absolute.txt'), body: 'x' }],
        message: /unsafe archive entry ".*\/escaped-absolute\.txt": path is absolute$/,
      },
      {
        name: 'a ".." component',
        entries: () => [{ path: 'ok.txt', body: 'x' }, { path: 'a/../../escaped-dotdot.txt', body: 'x' }],
        message: /unsafe archive entry "a\/\.\.\/\.\.\/escaped-dotdot\.txt": path escapes the tree with "\.\."$/,
      },
      {
        name: 'a write through a symlink',
        entries: () => [{ path: 'ok.txt', body: 'x' }, { path: 'sub/' }, { path: 'lnk', type: 'SymbolicLink', linkpath: 'sub' }, { path: 'lnk/evil.txt', body: 'x' }],
        message: /unsafe archive entry "lnk\/evil\.txt": path goes through the symlink "lnk"/,
      },
      {
        name: 'a hard link outside the tree',
        entries: () => [{ path: 'ok.txt', body: 'x' }, { path: 'h', type: 'Link', linkpath: '../../escaped-link' }],
        message: /unsafe archive entry "h": hard link target "\.\.\/\.\.\/escaped-link" escapes the tree with "\.\."$/,
        // A hard link's target is named from the tree's root, which is releases/.tmp-<id>-<random>/
        // while it unpacks: from there "../../escaped-link" is the configuration directory's.
        victim: () => path.resolve(confDir(), 'releases', '.tmp-unpacking', '../../escaped-link'),
      },
      {
        name: 'a device node',
        entries: () => [{ path: 'ok.txt', body: 'x' }, { path: 'null', type: 'CharacterDevice', devmaj: 1, devmin: 3 }],
        message: /unsafe archive entry "null": character device entries are not allowed/,
      },
      {
        name: 'a fifo',
        entries: () => [{ path: 'ok.txt', body: 'x' }, { path: 'pipe', type: 'FIFO' }],
        message: /unsafe archive entry "pipe": fifo entries are not allowed/,
      },
    ];
    for (const [index, rule] of rules.entries()) {
      it(`refuses ${rule.name}, naming the entry, and keeps the old release current`, async () => {
        const bytes = gzipSync(tarBytes(rule.entries()));
        const victim = rule.victim?.();
        if (victim !== undefined) await writeFile(victim, 'not the release\'s');
        // The server's upload inspection refuses the archive: only a blob put straight into the store reaches the agent.
        const file = path.join(fx.root, `rule-${index}.tar.gz`);
        await writeFile(file, bytes);
        const upload = await runStrata(['addver', '--name', 'rules', '--version', `upload-${index}`, '--file', file], fx.server.env);
        assert.equal(upload.code, 1, `the server refuses it at upload: ${upload.stdout}`);
        assert.match(upload.stderr, /unsafe archive entry/);

        await ok(['addver', '--name', 'rules', '--version', `rule-${index}`, '--hash', await storeUninspected(bytes)]);
        const failed = await deployRules(`rule-${index}`);
        assert.equal(failed.phase, 'failed', JSON.stringify(failed));
        assert.equal(failed.error?.code, 'UNSAFE_ARCHIVE_ENTRY', JSON.stringify(failed));
        assert.match(failed.error?.message ?? '', /^layer "rules": /, 'the message names the layer');
        assert.match(failed.error?.message ?? '', rule.message, 'and the entry and the rule it breaks');
        await onlyTheOldRelease();
        assert.equal(await stat(path.join(fx.root, 'escaped-absolute.txt')).catch(() => undefined), undefined);
        assert.equal(await stat(path.join(confDir(), 'releases', 'escaped-dotdot.txt')).catch(() => undefined), undefined);
        if (victim !== undefined) {
          assert.equal(await read(victim), 'not the release\'s', 'the file outside the tree is unchanged');
          // A hard link to it from a release would make two names for its inode.
          assert.equal((await stat(victim)).nlink, 1, 'nothing in the tree was linked to the file outside it');
          await rm(victim);
        }
      });
    }

    it('refuses a release over the agent\'s --max-files or --max-unpacked, saying which, and deploys one within them', async () => {
      const files: Record<string, string> = {};
      for (let i = 0; i < 25; i++) files[`f${i}.txt`] = 'x';
      await push('rules', 'too-many', files);
      const many = await deployRules('too-many');
      assert.equal(many.phase, 'failed', JSON.stringify(many));
      assert.match(many.error?.message ?? '', /^layer "rules": unsafe archive entry "[^"]+": the layers have more than 20 entries in all$/);
      await onlyTheOldRelease();

      await push('rules', 'too-big', { 'big.bin': Buffer.alloc(100 * 1024, 1) });
      const big = await deployRules('too-big');
      assert.equal(big.phase, 'failed', JSON.stringify(big));
      assert.match(big.error?.message ?? '', /^layer "rules": unsafe archive entry "big\.bin": the layers unpack to more than 65536 bytes in all$/);
      await onlyTheOldRelease();

      await push('rules', 'v2', { 'safe.txt': 'safe again', 'small.bin': Buffer.alloc(60 * 1024, 1) });
      assert.equal((await deployRules('v2')).phase, 'deployed', 'after every refusal the agent still deploys what is within its limits');
      assert.equal(await read(path.join(confDir(), 'current', 'safe.txt')), 'safe again');
    });
  });
});
