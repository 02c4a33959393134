/**
 * Faults, end to end: a real server and real agent processes on loopback. kill -9 in the middle
 * of a download (resumed with a Range request, verified blobs not fetched again) and of an
 * unpack, a full disk while unpacking, a server unreachable at the first start (the daemon waits
 * for it, `--once` gives up in time), a tracked configuration that does not exist yet, a failed
 * deploy's backoff kept across a restart, the blob cache trimmed after each deploy, and timing
 * flags that would make a busy loop. In every case the previous release stays current until the
 * new one is whole. Hook faults are in agent-hook-faults.test.ts, and archives the agent must
 * refuse in agent-unsafe-archives.test.ts.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { requestLog, runStrata, startServer, type TestServer } from './helpers/strata-server.ts';
import { currentId, joinToken, tempReleases, waitFor, type TestAgent } from './helpers/strata-agent.ts';
import { agentFixture, alive, read } from './helpers/agent-fixture.ts';
import { writeScript } from './helpers/service-release.ts';
import { ONCE_UNREACHABLE_MS } from '../src/agent/agent.ts';

const run = promisify(execFile);

/**
 * A TCP proxy in front of the server that counts the bytes it carries to the client and can
 * throttle them (per connection), so a download is slow enough to interrupt deterministically.
 * TLS passes through untouched: the agent still verifies the server's certificate.
 */
class ThrottlingProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  /** Bytes per second per connection, or undefined for full speed. */
  rate: number | undefined;
  bytesDown = 0;
  port = 0;

  constructor(target: { host: string; port: number }, rate: number | undefined) {
    this.rate = rate;
    this.#server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        this.bytesDown += chunk.byteLength;
        client.write(chunk);
        if (this.rate !== undefined) {
          upstream.pause();
          setTimeout(() => upstream.resume(), (chunk.byteLength / this.rate) * 1000);
        }
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return `https://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** The GET requests for one blob the server has logged so far. */
function blobGets(logs: string, sha256: string): { status?: number }[] {
  return requestLog(logs).filter((r) => r.method === 'GET' && r.url === `/v1/blobs/${sha256}`);
}

describe('agent faults against a real server', () => {
  const fx = agentFixture({ prefix: 'strata-agent-faults-' });
  const { ok, push, showconf, reported, agent } = fx;

  it('resumes a download interrupted by kill -9: verified blobs are not fetched again, the partial one continues with a Range request', async () => {
    const big = 24 * 1024 * 1024;
    await push('dl-base', 'v1', { 'base.txt': 'base' });
    await push('dl-small', 'v1', { 'small.bin': randomBytes(64 * 1024) });
    await push('dl-big', 'v1', { 'big.bin': randomBytes(big) });
    await ok(['addconf', '--name', 'dl', '--layer', 'dl-base:v1']);

    // Throttled to 4 MiB/s per connection: the big blob takes ~6 s, the small one ~20 ms.
    const proxy = new ThrottlingProxy({ host: '127.0.0.1', port: Number(new URL(fx.server.url).port) }, 4 * 1024 * 1024);
    const proxyUrl = await proxy.listen();
    try {
      const dir = path.join(fx.root, 'agent-dl');
      const confDir = path.join(dir, 'dl');
      let running = agent({ server: { ...fx.server, url: proxyUrl }, dir, name: 'dl-1', token: fx.token, args: ['--track', 'dl'] });
      assert.equal(await waitFor('v1 deployed', () => read(path.join(confDir, 'current', 'base.txt'))), 'base');
      const v1 = await currentId(confDir);

      await ok(['addconf', '--force', '--name', 'dl', '--layer', 'dl-base:v1', '--layer', 'dl-small:v1', '--layer', 'dl-big:v1']);
      const v2 = await showconf('dl');
      const [baseBlob, smallBlob, bigBlob] = v2.layers.map((layer) => layer.blob) as [string, string, string];
      const bigSize = v2.layers[2]!.size;
      const cache = path.join(dir, 'cache');
      const part = path.join(cache, `${bigBlob}.part`);
      // Kill once the small blob is verified in the cache and the big one is well under way.
      await waitFor('small blob cached and big blob partly downloaded', async () => {
        const small = await stat(path.join(cache, smallBlob)).catch(() => undefined);
        const partial = await stat(part).catch(() => undefined);
        return small !== undefined && partial !== undefined && partial.size >= 2 * 1024 * 1024;
      }, 20_000, 20);
      assert.equal(await currentId(confDir), v1, 'during the download the old release is current');
      await running.stop('SIGKILL');
      const partSize = (await stat(part)).size;
      assert.ok(partSize > 0 && partSize < bigSize, `the kill landed mid-download (${partSize} of ${bigSize} bytes)`);
      assert.equal(await currentId(confDir), v1, 'after the kill the old, complete release is still current');
      assert.equal(await read(path.join(confDir, 'current', 'base.txt')), 'base');
      assert.equal(blobGets(fx.server.logs(), smallBlob).length, 1);
      assert.equal(blobGets(fx.server.logs(), bigBlob).length, 1);

      // Restart at full speed and count what the server sends.
      proxy.rate = undefined;
      proxy.bytesDown = 0;
      running = agent({ dir });
      await waitFor('v2 deployed after the restart', async () => (await currentId(confDir)) === v2.id, 30_000);
      assert.equal((await stat(path.join(confDir, 'current', 'big.bin'))).size, big, 'the new release is complete');
      assert.equal((await stat(path.join(confDir, 'current', 'small.bin'))).size, 64 * 1024);
      assert.equal(await read(path.join(confDir, 'current', 'base.txt')), 'base');

      const logs = fx.server.logs();
      assert.equal(blobGets(logs, baseBlob).length, 1, 'the first release\'s blob was fetched once, for v1');
      assert.equal(blobGets(logs, smallBlob).length, 1, 'the verified small blob is not downloaded again');
      const bigGets = blobGets(logs, bigBlob);
      assert.equal(bigGets.length, 2, `the big blob took exactly one more request: ${JSON.stringify(bigGets)}`);
      assert.equal(bigGets[1]!.status, 206, 'the resumed request was a range request answered 206');
      // What crossed the wire after the restart: the rest of the big blob plus small API traffic.
      const rest = bigSize - partSize;
      assert.ok(proxy.bytesDown >= rest, `at least the missing ${rest} bytes were sent (${proxy.bytesDown})`);
      assert.ok(proxy.bytesDown < rest + 1024 * 1024, `only the missing ${rest} bytes were sent, not the whole blob (${proxy.bytesDown} of ${bigSize})`);
      assert.deepEqual((await readdir(cache)).filter((name) => name.endsWith('.part')), [], 'no partial download is left');
      await running.stop();
    } finally {
      await proxy.close();
    }
  });

  it('survives kill -9 during an unpack: the old release stays current, and the restart converges and clears the debris', async () => {
    await push('many', 'v1', { 'one.txt': 'one' });
    await ok(['addconf', '--name', 'many', '--layer', 'many:v1']);
    const dir = path.join(fx.root, 'agent-unpack');
    const confDir = path.join(dir, 'many');
    let running = agent({ server: fx.server, dir, name: 'unpack-1', token: fx.token, args: ['--track', 'many'] });
    assert.equal(await waitFor('v1 deployed', () => read(path.join(confDir, 'current', 'one.txt'))), 'one');
    const v1 = await currentId(confDir);

    const files: Record<string, string> = {};
    // 8,000 small files take a few seconds to unpack and fsync: a wide window to kill in.
    for (let i = 0; i < 8_000; i++) files[`d${i % 100}/f${i}.txt`] = `file ${i}\n`;
    await push('many', 'v2', files);
    await ok(['changeconf', '--name', 'many', '--component', 'many', '--version', 'v2']);
    const v2 = await showconf('many');
    const releases = path.join(confDir, 'releases');
    // Kill once the unfinished tree has started to fill.
    await waitFor('the unpack under way', async () => {
      for (const name of await tempReleases(confDir)) {
        if ((await readdir(path.join(releases, name)).catch(() => [])).length >= 2) return true;
      }
      return false;
    }, 20_000, 10);
    await running.stop('SIGKILL');
    assert.equal(await currentId(confDir), v1, 'current still points at the old release');
    assert.equal(await read(path.join(confDir, 'current', 'one.txt')), 'one', 'and the old release is whole');
    assert.equal(await stat(path.join(releases, v2.id)).catch(() => undefined), undefined, 'the kill landed before the new release was complete');
    assert.ok((await tempReleases(confDir)).length >= 1, 'the unfinished tree is left as crash debris');
    // What other interrupted steps leave: the switch's link, a hook's STATEFILE, an atomic write's temp file.
    // Another writer's temp files count as debris once a minute old; a fresh one may be a write in progress.
    const debris = ['current.tmp-0123456789ab', '.statefile-0123456789abcdef.json', '.state.json.0123456789ab.tmp'];
    const minutesAgo = new Date(Date.now() - 120_000);
    for (const name of debris) {
      await writeFile(path.join(confDir, name), 'debris');
      await utimes(path.join(confDir, name), minutesAgo, minutesAgo);
    }
    await writeFile(path.join(confDir, '.hold.0123456789ab.tmp'), 'a write in progress');
    await writeFile(path.join(confDir, 'notes.tmp'), 'not ours to remove');

    running = agent({ dir });
    await waitFor('the debris swept before the deploy', async () => /removed what an interrupted deploy left/.test(running.logs()));
    for (const name of debris) assert.equal(await stat(path.join(confDir, name)).catch(() => undefined), undefined, `${name} removed`);
    assert.equal(await read(path.join(confDir, 'notes.tmp')), 'not ours to remove');
    assert.equal(await read(path.join(confDir, '.hold.0123456789ab.tmp')), 'a write in progress');
    await waitFor('v2 deployed after the restart', async () => (await currentId(confDir)) === v2.id, 40_000);
    assert.equal(await read(path.join(confDir, 'current', 'd99', 'f7999.txt')), 'file 7999\n');
    assert.equal((await readdir(path.join(confDir, 'current', 'd0'))).length, 80);
    await waitFor('no .tmp-* left after the deploy', async () => (await tempReleases(confDir)).length === 0, 10_000);
    await reported('unpack-1', 'many', (s) => s.phase === 'deployed');
    await running.stop();
  });

  describe('a full disk while unpacking', () => {
    let mountPoint: string | undefined;
    let mounted = false;
    let diskAgent: TestAgent | undefined;
    // One after-hook, in order: the agent off the disk first, then unmount, then the mount point.
    after(async () => {
      await diskAgent?.stop('SIGKILL');
      if (mounted) await run('umount', [mountPoint!]);
      if (mountPoint) await rm(mountPoint, { recursive: true, force: true });
    });

    it('fails with INSUFFICIENT_STORAGE, removes the half-built release and keeps the old one current', async (t) => {
      mountPoint = await mkdtemp(path.join(os.tmpdir(), 'strata-agent-tmpfs-'));
      try {
        await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountPoint]);
        mounted = true;
      } catch (error) {
        // The unpack's own part is proven wherever the tests run: test/agent-unpack.test.ts injects ENOSPC.
        t.skip(`cannot mount a small tmpfs here: ${(error as Error).message.split('\n')[0]}`);
        return;
      }
      await push('full', 'v1', { 'ok.txt': 'fits' });
      await ok(['addconf', '--name', 'full', '--layer', 'full:v1']);
      const dir = path.join(mountPoint, 'agent');
      const confDir = path.join(dir, 'full');
      diskAgent = agent({ server: fx.server, dir, name: 'disk-1', token: fx.token, args: ['--track', 'full'] });
      assert.equal(await waitFor('v1 deployed', () => read(path.join(confDir, 'current', 'ok.txt'))), 'fits');
      const v1 = await currentId(confDir);

      // 32 MiB of zeros: a tiny blob that unpacks to far more than the 8 MiB disk.
      await push('full', 'v2', { 'zeros.bin': Buffer.alloc(32 * 1024 * 1024) });
      await ok(['changeconf', '--name', 'full', '--component', 'full', '--version', 'v2']);
      const v2 = await showconf('full');
      assert.ok(v2.layers[0]!.size < 1024 * 1024, `the blob itself fits (${v2.layers[0]!.size} bytes)`);
      const failed = await reported('disk-1', 'full', (s) => s.phase === 'failed');
      assert.equal(failed.error?.code, 'INSUFFICIENT_STORAGE', JSON.stringify(failed));
      assert.match(failed.error?.message ?? '', /no space left/);
      assert.equal(await currentId(confDir), v1, 'the old release stays current');
      assert.equal(await read(path.join(confDir, 'current', 'ok.txt')), 'fits');
      assert.ok(await stat(path.join(dir, 'cache', v2.layers[0]!.blob)), 'the blob was downloaded');
      // The agent retries with backoff; stop it so nothing is being unpacked while we look.
      await diskAgent.stop();
      assert.deepEqual(await tempReleases(confDir), [], 'the half-built release was removed');
      assert.deepEqual((await readdir(path.join(confDir, 'releases'))).sort(), [v1], 'only the old release is on disk');
      const { stdout } = await run('df', ['-B1', '--output=used', mountPoint]);
      assert.ok(Number(stdout.trim().split('\n').at(-1)) < 4 * 1024 * 1024, `the disk is not left full: ${stdout}`);
    });
  });

  it('keeps retrying while the server is unreachable at the first start, then enrolls and deploys', async () => {
    const other = await startServer(path.join(fx.root, 'data-unreachable'));
    let restarted: TestServer | undefined;
    try {
      const otherToken = await joinToken(other);
      await ok(['push', await (async () => {
        const dir = path.join(fx.root, 'src', 'late-v1');
        await mkdir(dir, { recursive: true });
        await writeFile(path.join(dir, 'late.txt'), 'late');
        return dir;
      })(), '--name', 'late', '--version', 'v1'], other.env);
      await ok(['addconf', '--name', 'late', '--layer', 'late:v1'], other.env);
      const listen = new URL(other.url).host;
      await other.stop();

      const dir = path.join(fx.root, 'agent-unreachable');
      const running = agent({ server: other, dir, name: 'late-1', token: otherToken, args: ['--track', 'late'] });
      await waitFor('the retry line', async () => /server unreachable; retrying/.test(running.logs()), 15_000);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      assert.ok(alive(running.process), `the agent keeps running while the server is away:\n${running.logs()}`);
      assert.match(running.logs(), /"what":"enroll"/);

      restarted = await startServer(other.dataDir, [], { listen });
      assert.equal(await waitFor('deployed once the server is back', () => read(path.join(dir, 'late', 'current', 'late.txt')), 30_000), 'late');
      assert.match(running.logs(), /"msg":"enrolled"/);
      await reported('late-1', 'late', (s) => s.phase === 'deployed', 20_000, () => restarted!);
      await running.stop();
    } finally {
      await restarted?.stop();
      await other.stop();
    }
  });

  it('--once gives up on a server it cannot reach, at the first start and once enrolled: exit 1 in time, one line saying so', async () => {
    await push('oncegone', 'v1', { 'g.txt': 'gone' });
    await ok(['addconf', '--name', 'oncegone', '--layer', 'oncegone:v1']);
    const enrolledDir = path.join(fx.root, 'agent-once-gone');
    const first = await runStrata(['agent', '--once', '--dir', enrolledDir, '--server', fx.server.url, '--join-token', fx.token, '--name', 'gone-1', '--track', 'oncegone', '--log-level', 'fatal']);
    assert.equal(first.code, 0, first.stderr);

    // A port merely found free could be taken, in the 20 s the agent retries, by another test file
    // running meanwhile, and the agent would then meet someone else's server. This one is held by
    // the test's own listener, which resets every connection as it arrives: to the agent that is
    // unreachable, like a closed port, so only the bound ends the run. The reason after the colon
    // is the socket error, which is not what is under test.
    const holder = net.createServer((socket) => socket.resetAndDestroy());
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const dead = `https://127.0.0.1:${(holder.address() as net.AddressInfo).port}`;
    try {
      const started = Date.now();
      const timed = async (args: string[]) => ({ ...(await runStrata(['agent', '--once', ...args, '--server', dead, '--log-level', 'fatal'])), seconds: (Date.now() - started) / 1000 });
      const [fresh, enrolled] = await Promise.all([
        timed(['--dir', path.join(fx.root, 'agent-once-fresh'), '--join-token', fx.token, '--name', 'gone-2', '--track', 'oncegone']),
        timed(['--dir', enrolledDir]),
      ]);
      const bound = ONCE_UNREACHABLE_MS / 1000;
      for (const [result, what] of [[fresh, 'enroll'], [enrolled, 'read the desired state']] as const) {
        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, new RegExp(`^could not reach the server to ${what} within ${bound} s \\(\\d+ attempts\\): [^\n]+\n$`));
        assert.ok(result.seconds >= bound - 1 && result.seconds < bound + 10, `gave up after ${result.seconds} s, about ${bound} s expected`);
      }
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
    assert.equal(await read(path.join(enrolledDir, 'oncegone', 'current', 'g.txt')), 'gone', 'what was deployed stays');
  });

  it('reports a tracked configuration that does not exist as pending, and deploys it as soon as it is added', async () => {
    const dir = path.join(fx.root, 'agent-missing');
    // A long poll: the deploy must come from the push over the channel, not from polling.
    const running = agent({ server: fx.server, dir, name: 'missing-1', token: fx.token, args: ['--track', 'notyet', '--poll', '60s'] });
    const pending = await reported('missing-1', 'notyet', (s) => s.phase === 'pending' && s.error !== undefined);
    assert.equal(pending.error?.code, 'CONFIGURATION_NOT_FOUND');
    assert.match(pending.error?.message ?? '', /"notyet" does not exist/);
    assert.ok(alive(running.process));

    await push('notyet', 'v1', { 'n.txt': 'here now' });
    await ok(['addconf', '--name', 'notyet', '--layer', 'notyet:v1']);
    const started = Date.now();
    assert.equal(await waitFor('deployed after addconf', () => read(path.join(dir, 'notyet', 'current', 'n.txt')), 5_000, 20), 'here now');
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 5_000, `pushed to the agent within seconds (${elapsed} ms)`);
    const deployed = await reported('missing-1', 'notyet', (s) => s.phase === 'deployed');
    assert.equal(deployed.error, undefined, 'the not-found error is cleared');
    await running.stop();
  });

  it('keeps a failed deploy\'s backoff across a restart, reporting the failure meanwhile, until a newer revision supersedes it', async () => {
    const dir = path.join(fx.root, 'agent-backoff');
    const runs = path.join(fx.root, 'backoff-hook.runs');
    const hook = await writeScript(path.join(fx.root, 'backoff-hook.sh'), `#!/bin/sh\necho run >> ${JSON.stringify(runs)}\nif [ -f "$NEWROOT/fail" ]; then echo "failing on purpose" >&2; exit 3; fi\nexit 0\n`);
    await push('backoff', 'v1', { 'v.txt': 'one', fail: 'yes' });
    await ok(['addconf', '--name', 'backoff', '--layer', 'backoff:v1']);
    const args = ['--track', 'backoff', '--hook', hook, '--retry-base', '60s', '--retry-cap', '60s'];
    let running = agent({ server: fx.server, dir, name: 'backoff-1', token: fx.token, args });
    await reported('backoff-1', 'backoff', (s) => s.phase === 'failed');
    const hookRuns = async (): Promise<number> => ((await read(runs)) ?? '').split('\n').filter(Boolean).length;
    assert.equal(await hookRuns(), 1);
    await running.stop('SIGKILL');

    running = agent({ dir, args });
    await waitFor('the restarted agent running', async () => /"to":"running"/.test(running.logs()));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(await hookRuns(), 1, 'the restart waits out the recorded backoff instead of running the hook again');
    const failed = await reported('backoff-1', 'backoff', (s) => s.phase === 'failed');
    assert.equal(failed.error?.code, 'HOOK_FAILED');
    await running.stop();
    const once = await runStrata(['agent', '--once', '--dir', dir, '--hook', hook, '--log-level', 'fatal']);
    assert.equal(once.code, 1, once.stderr);
    assert.equal(await hookRuns(), 2, '--once tries now, whatever the backoff');

    running = agent({ dir, args });
    await push('backoff', 'v2', { 'v.txt': 'two' });
    await ok(['changeconf', '--name', 'backoff', '--component', 'backoff', '--version', 'v2']);
    await waitFor('v2 supersedes the failing v1 at once', async () => (await read(path.join(dir, 'backoff', 'current', 'v.txt'))) === 'two');
    // state.json is written just after the switch (under the releases lock): read it once the deploy is reported.
    await reported('backoff-1', 'backoff', (s) => s.phase === 'deployed');
    const state = JSON.parse((await read(path.join(dir, 'backoff', 'state.json'))) ?? '{}') as { failed?: unknown };
    assert.equal(state.failed, undefined, 'a successful deploy clears the recorded failure');
    await running.stop();
  });

  it('trims its blob cache after each deploy to the blobs of the releases it keeps, leaving foreign files alone', async () => {
    const dir = path.join(fx.root, 'agent-trim');
    const confDir = path.join(dir, 'trim');
    const cacheDir = path.join(dir, 'cache');
    await push('trim', 'v1', { 'v.txt': 'one' });
    await ok(['addconf', '--name', 'trim', '--layer', 'trim:v1']);
    const running = agent({ server: fx.server, dir, name: 'trim-1', token: fx.token, args: ['--track', 'trim', '--keep', '1'] });
    const blobs: string[] = [];
    for (const version of ['v1', 'v2', 'v3']) {
      if (version !== 'v1') {
        await push('trim', version, { 'v.txt': version });
        await ok(['changeconf', '--name', 'trim', '--component', 'trim', '--version', version]);
      }
      const conf = await showconf('trim');
      blobs.push(conf.layers[0]!.blob);
      await waitFor(`${version} deployed`, async () => (await currentId(confDir)) === conf.id);
      if (version === 'v1') await writeFile(path.join(cacheDir, 'README'), 'not a blob: stays');
    }
    // --keep 1 keeps v3 and, protected, the release it replaced (v2); v1's release and blob go.
    const kept = [blobs[1]!, blobs[2]!].sort();
    await waitFor('v1\'s blob trimmed', async () => JSON.stringify((await readdir(cacheDir)).filter((name) => name !== 'README').sort()) === JSON.stringify(kept));
    assert.equal(await read(path.join(cacheDir, 'README')), 'not a blob: stays');
    assert.match(running.logs(), /removed cached blobs no kept release uses/);
    await running.stop();
  });

  it('refuses timing flags that would make a busy loop, with one line and exit status 2, and starts with the smallest allowed', async () => {
    const dir = path.join(fx.root, 'agent-timing');
    const cases: [string[], RegExp][] = [
      [['--poll', '0s'], /^strata: --poll must be at least 1s\n$/],
      [['--retry-base', '0s'], /^strata: --retry-base must be at least 100ms\n$/],
      [['--retry-cap', '0s'], /^strata: --retry-cap must be at least 5s\n$/],
      [['--retry-base', '10m', '--retry-cap', '0s'], /^strata: --retry-cap must be at least 10m\n$/],
      [['--retry-base', '2s', '--retry-cap', '1s'], /^strata: --retry-cap must be at least 2s\n$/],
      [['--hook-timeout', '10ms'], /^strata: --hook-timeout must be at least 1s\n$/],
      [['--poll', 'soon'], /^strata: --poll: invalid duration "soon"/],
    ];
    for (const [args, expected] of cases) {
      const result = await runStrata(['agent', '--dir', dir, '--server', fx.server.url, '--join-token', fx.token, '--name', 'timing-1', '--track', 'site', ...args]);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, expected);
    }
    await assert.rejects(stat(dir), { code: 'ENOENT' }, 'a refused start creates nothing');
    const once = await runStrata(['agent', '--once', '--dir', dir, '--server', fx.server.url, '--join-token', fx.token, '--name', 'timing-1', '--track', 'notyet-either', '--poll', '1s', '--retry-base', '100ms', '--retry-cap', '100ms', '--hook-timeout', '1s', '--log-level', 'fatal']);
    assert.equal(once.code, 1, `the floors themselves are accepted; the configuration does not exist: ${once.stderr}`);
    const longBase = await runStrata(['agent', '--once', '--dir', dir, '--track', 'notyet-either', '--retry-base', '10m', '--log-level', 'fatal']);
    assert.equal(longBase.code, 1, `a base above the default cap, given alone, raises the cap: ${longBase.stderr}`);
  });
});
