/**
 * End to end: `strata import-image` (the real CLI, stdin) against a real `strata server`, with
 * image archives built in both `docker save` layouts. Each imported configuration is fetched back
 * over the API and its layers unpacked in order with plain GNU tar, as a deploy-tools agent does,
 * then compared file by file with the merged tree the layers should make. Bad inputs beside the good.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHttpClient } from '../src/lib/http-client.ts';
import { CLI, runStrata, startServer, type TestServer } from './helpers/strata-server.ts';
import { legacyArchive, mergedTree, ociArchive, tarBytes, type ImageSpec, type TarItem, type TreeNode } from './helpers/image-archive.ts';

let root: string;
let server: TestServer;

interface ConfigurationBody {
  name: string;
  revision: number;
  id: string;
  layers: { component: string; version: string; blob: string }[];
  settings?: Record<string, unknown>;
}

/** A three-layer image exercising files, modes, symlinks, hard links (one whose target is deleted above), whiteouts and opaque directories. */
const LAYERS: TarItem[][] = [
  [
    { path: 'usr/', type: 'dir' }, { path: 'usr/bin/', type: 'dir' },
    { path: 'usr/bin/server', content: '#!/bin/sh\necho base\n', mode: 0o755 },
    { path: 'usr/bin/old-tool', content: 'old', mode: 0o755 },
    { path: 'usr/bin/perl', content: 'perl', mode: 0o755 },
    { path: 'usr/bin/perl5', type: 'link', target: 'usr/bin/perl' },
    { path: 'usr/bin/perl5.36', type: 'link', target: 'usr/bin/perl' },
    { path: 'etc/', type: 'dir' }, { path: 'etc/app/', type: 'dir', mode: 0o750 },
    { path: 'etc/app/a.conf', content: 'a=1' }, { path: 'etc/app/b.conf', content: 'b=1' },
    { path: 'etc/app/sub/', type: 'dir' }, { path: 'etc/app/sub/deep.conf', content: 'deep' },
    { path: 'var/', type: 'dir' }, { path: 'var/cache/', type: 'dir' }, { path: 'var/cache/big.bin', content: 'x'.repeat(5000) },
    { path: 'README', content: 'base readme', mode: 0o600 },
    { path: 'bin', type: 'symlink', target: 'usr/bin' },
  ],
  [
    { path: 'usr/bin/.wh.old-tool' }, { path: 'usr/bin/.wh.perl' },
    { path: 'etc/app/', type: 'dir', mode: 0o750 }, { path: 'etc/app/.wh..wh..opq' },
    { path: 'etc/app/c.conf', content: 'c=2' },
    { path: './var/.wh.cache' },
    { path: 'usr/bin/helper', content: 'helper', mode: 0o700 },
    { path: 'usr/bin/helper-link', type: 'link', target: 'usr/bin/helper' },
    { path: 'current', type: 'symlink', target: 'etc/app/c.conf' },
  ],
  [
    { path: 'README', content: 'top readme', mode: 0o644 },
    { path: '.wh.current' },
    { path: 'var/', type: 'dir' }, { path: 'var/cache/', type: 'dir' }, { path: 'var/cache/new', content: 'fresh' },
  ],
];

const SPEC: ImageSpec = {
  ref: 'team/web:1.2',
  layers: LAYERS,
  config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'MODE=prod', 'GREETING=a=b'], Entrypoint: ['server'], Cmd: ['--port', '8080'], WorkingDir: '/srv/app', User: 'www' },
};

async function importImage(args: string[], input: Buffer): Promise<{ code: number; stdout: string; stderr: string }> {
  return runStrata(['import-image', ...args], server.env, { input });
}

async function imported(args: string[], input: Buffer): Promise<string> {
  const result = await importImage(args, input);
  assert.equal(result.code, 0, `import-image ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

async function refused(args: string[], input: Buffer, pattern: RegExp): Promise<void> {
  const result = await importImage(args, input);
  assert.equal(result.code, 1, `import-image ${args.join(' ')} should fail: ${result.stdout}${result.stderr}`);
  assert.match(result.stderr.trimEnd(), pattern);
  assert.equal(result.stderr.trim().split('\n').length, 1, `one line on stderr, got: ${result.stderr}`);
  assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/, 'no stack trace');
}

async function api<T>(method: string, urlPath: string): Promise<{ status: number; body: T }> {
  const client = createHttpClient({ baseUrl: server.url, token: server.token, fingerprint: server.fingerprint });
  try {
    const response = await client.request({ method, path: urlPath });
    return { status: response.status, body: await response.json<T>() };
  } finally {
    client.close();
  }
}

async function configuration(name: string): Promise<ConfigurationBody> {
  const { status, body } = await api<ConfigurationBody>('GET', `/v1/configurations/${encodeURIComponent(name)}`);
  assert.equal(status, 200, `configuration ${name}: ${JSON.stringify(body)}`);
  return body;
}

async function configurationNames(): Promise<string[]> {
  return (await api<{ configurations: { name: string }[] }>('GET', '/v1/configurations')).body.configurations.map((c) => c.name);
}

/** Downloads the configuration's blobs and unpacks them in order with GNU tar into a fresh directory. */
async function unpackConfiguration(name: string): Promise<string> {
  const target = await mkdtemp(path.join(root, 'tree-'));
  const client = createHttpClient({ baseUrl: server.url, token: server.token, fingerprint: server.fingerprint });
  try {
    for (const layer of (await configuration(name)).layers) {
      const response = await client.request({ method: 'GET', path: `/v1/blobs/${layer.blob}` });
      assert.equal(response.status, 200);
      const chunks: Buffer[] = [];
      for await (const chunk of response.body) chunks.push(chunk as Buffer);
      const file = path.join(root, `${layer.blob}.tar.gz`);
      await writeFile(file, Buffer.concat(chunks));
      execFileSync('tar', ['-xzpf', file, '-C', target]);
    }
  } finally {
    client.close();
  }
  return target;
}

/** Every path under `dir` with its type, mode, content or target. */
async function readTree(dir: string): Promise<Map<string, TreeNode>> {
  const found = new Map<string, TreeNode>();
  const walk = async (relative: string): Promise<void> => {
    for (const name of await readdir(path.join(dir, relative))) {
      const entry = relative === '' ? name : `${relative}/${name}`;
      const full = path.join(dir, entry);
      const info = await lstat(full);
      if (info.isSymbolicLink()) found.set(entry, { type: 'symlink', target: await readlink(full) });
      else if (info.isDirectory()) {
        found.set(entry, { type: 'dir', mode: info.mode & 0o7777 });
        await walk(entry);
      } else found.set(entry, { type: 'file', mode: info.mode & 0o7777, content: await readFile(full, 'utf8') });
    }
  };
  await walk('');
  return found;
}

/** Asserts the unpacked tree is exactly the expected merged tree (directories only implied by a path may also exist). */
async function assertTree(dir: string, layers: TarItem[][]): Promise<void> {
  const expected = mergedTree(layers);
  const actual = await readTree(dir);
  for (const [entry, node] of expected) assert.deepEqual(actual.get(entry), node, `entry ${entry}`);
  for (const [entry, node] of actual) {
    if (expected.has(entry)) continue;
    const implied = node.type === 'dir' && [...expected.keys()].some((key) => key.startsWith(`${entry}/`));
    assert.ok(implied, `unexpected entry ${entry} (${node.type})`);
  }
}

describe('strata import-image against a real server', () => {
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'strata-image-'));
    server = await startServer(path.join(root, 'data'));
  });
  after(async () => {
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('imports a legacy docker save archive: whiteouts and opaque directories applied, one version per layer, image config kept', async () => {
    const out = await imported([], legacyArchive(SPEC));
    assert.match(out, /imported team\/web:1\.2 \(docker layout\) as configuration team\.web\.1\.2: revision 1/);
    const config = await configuration('team.web.1.2');
    assert.deepEqual(config.layers.map((l) => l.component), ['team.web.1.2.l0', 'team.web.1.2.l1', 'team.web.1.2.l2']);
    for (const layer of config.layers) assert.equal(layer.version, layer.blob, 'version = sha256 of the re-gzipped layer');
    assert.deepEqual(config.settings?.['image'], {
      ref: 'team/web:1.2', env: { PATH: '/usr/local/bin:/usr/bin:/bin', MODE: 'prod', GREETING: 'a=b' },
      entrypoint: ['server'], cmd: ['--port', '8080'], workdir: '/srv/app', user: 'www',
    });
    assert.equal(config.settings?.['service'], undefined, 'no service spec without --service');
    await assertTree(await unpackConfiguration('team.web.1.2'), LAYERS);
  });

  it('imports the OCI layout with gzipped layers to the same versions and tree', async () => {
    const legacy = await configuration('team.web.1.2');
    await imported(['--name', 'web-oci'], ociArchive(SPEC, { gzip: true }));
    const oci = await configuration('web-oci');
    assert.deepEqual(oci.layers.map((l) => l.component), ['web-oci.l0', 'web-oci.l1', 'web-oci.l2']);
    assert.deepEqual(oci.layers.map((l) => l.blob), legacy.layers.map((l) => l.blob), 'the same image gives the same deterministic layers');
    assert.equal((oci.settings?.['image'] as { ref?: string }).ref, 'team/web:1.2', 'the reference comes from the index annotations');
    await assertTree(await unpackConfiguration('web-oci'), LAYERS);
  });

  it('imports Docker 25 archives: manifest.json beside index.json, naming blobs directly or through <id>/layer.tar symlinks', async () => {
    const legacy = await configuration('team.web.1.2');
    for (const style of ['blobs', 'symlinks'] as const) {
      const out = await imported(['--name', `web-${style}`], ociArchive(SPEC, { gzip: true, legacyManifest: style }));
      assert.match(out, /\(docker layout\)/, 'manifest.json wins when both are present');
      assert.deepEqual((await configuration(`web-${style}`)).layers.map((l) => l.blob), legacy.layers.map((l) => l.blob));
    }
    await assertTree(await unpackConfiguration('web-symlinks'), LAYERS);
    // Saved under two tags, one image is listed twice: the first tag names it.
    for (const legacyManifest of [undefined, 'blobs'] as const) {
      const out = await imported([], ociArchive({ ...SPEC, ref: `two-tags:${legacyManifest ?? 'oci'}` }, { gzip: true, alsoTagged: ['two-tags:latest'], ...(legacyManifest ? { legacyManifest } : {}) }));
      assert.match(out, new RegExp(`as configuration two-tags\\.${legacyManifest ?? 'oci'}: revision 1`));
    }
  });

  it('picks linux/amd64 from a multi-platform index, or the platform asked for, and refuses one that is missing', async () => {
    const archive = ociArchive({ ...SPEC, ref: 'multi:1' }, { platforms: ['linux/arm64', 'linux/amd64'] });
    await imported([], archive);
    assert.equal((await configuration('multi.1')).settings?.['image'] && ((await configuration('multi.1')).settings!['image'] as { env: Record<string, string> }).env['PLATFORM'], 'linux/amd64');
    await imported(['--name', 'multi-arm', '--platform', 'linux/arm64'], archive);
    assert.equal(((await configuration('multi-arm')).settings!['image'] as { env: Record<string, string> }).env['PLATFORM'], 'linux/arm64');
    await imported(['--name', 'multi-docker'], ociArchive({ ...SPEC, ref: 'multi:1' }, { platforms: ['linux/arm64', 'linux/amd64'], gzip: true, mediaTypes: 'docker' }));
    const docker = await configuration('multi-docker');
    assert.equal((docker.settings!['image'] as { env: Record<string, string> }).env['PLATFORM'], 'linux/amd64', "Docker's manifest list and media types are read alike");
    await assertTree(await unpackConfiguration('multi-docker'), LAYERS);
    await refused(['--name', 'multi-s390', '--platform', 'linux/s390x'], archive, /^the image has no linux\/s390x manifest; it has: linux\/arm64, linux\/amd64$/);
    assert.ok(!(await configurationNames()).includes('multi-s390'));
  });

  it('re-importing the same image reuses the versions and changes nothing', async () => {
    const before = await configuration('team.web.1.2');
    const out = await imported([], legacyArchive(SPEC));
    assert.match(out, /team\.web\.1\.2\.l0:[0-9a-f]{64} {3}exists/);
    assert.match(out, /unchanged at revision 1/);
    const after = await configuration('team.web.1.2');
    assert.equal(after.revision, before.revision);
    assert.equal(after.id, before.id);
    const json = JSON.parse(await imported(['--json'], ociArchive(SPEC))) as { configuration: string; changed: boolean; layers: { added: boolean; blob: string }[] };
    assert.equal(json.configuration, 'team.web.1.2');
    assert.equal(json.changed, false, 'the OCI layout of the same image is the same import');
    assert.deepEqual(json.layers.map((l) => [l.added, l.blob]), before.layers.map((l) => [false, l.blob]));
  });

  it('updates an existing configuration when the image changes, reusing the unchanged layers', async () => {
    const changed: ImageSpec = { ...SPEC, layers: [...LAYERS.slice(0, 2), [{ path: 'README', content: 'v2 readme' }]] };
    const out = await imported([], legacyArchive(changed));
    assert.match(out, /team\.web\.1\.2\.l0:[0-9a-f]{64} {3}exists/);
    assert.match(out, /team\.web\.1\.2\.l2:[0-9a-f]{64} {3}added/);
    assert.match(out, /revision 2/);
    await assertTree(await unpackConfiguration('team.web.1.2'), changed.layers);
  });

  it('--service sets settings.service from ENTRYPOINT/CMD, ENV, WORKDIR and USER; showconf -v shows the image config after the deploy-tools lines', async () => {
    await imported(['--name', 'svc', '--service'], legacyArchive(SPEC));
    const service = (await configuration('svc')).settings?.['service'] as Record<string, unknown>;
    assert.equal(service['command'], 'usr/bin/server', 'the bare ENTRYPOINT is found in the image PATH');
    assert.deepEqual(service['args'], ['--port', '8080']);
    assert.equal(service['workdir'], 'srv/app');
    assert.equal(service['user'], 'www');
    assert.deepEqual(service['env'], { PATH: '/usr/local/bin:/usr/bin:/bin', MODE: 'prod', GREETING: 'a=b' });

    const shown = await runStrata(['showconf', '--name', 'svc', '-v'], server.env);
    assert.equal(shown.code, 0, shown.stderr);
    const [deployTools, image] = shown.stdout.split('\n\nImage:');
    assert.match(deployTools!, /^Name:\tsvc\nMtime:\t\S+Z\nHash:\t[0-9a-f]{64}\n\nsvc\.l0 +[0-9a-f]{64} +\S+Z +\nsvc\.l1 /);
    assert.equal(`Image:${image}`, 'Image:\tteam/web:1.2\nEntrypoint:\t["server"]\nCmd:\t["--port","8080"]\nWorkdir:\t/srv/app\nUser:\twww\nEnv:\tPATH=/usr/local/bin:/usr/bin:/bin\nEnv:\tMODE=prod\nEnv:\tGREETING=a=b\n');
    const plain = await runStrata(['showconf', '--name', 'svc'], server.env);
    assert.doesNotMatch(plain.stdout, /Image:/, 'without -v the deploy-tools layout is unchanged');

    const other: ImageSpec = { ...SPEC, config: { ...SPEC.config, Env: ['MODE=staging'] } };
    await imported(['--name', 'svc'], legacyArchive(other));
    const updated = await configuration('svc');
    assert.equal(updated.revision, 2);
    assert.deepEqual((updated.settings?.['image'] as { env: Record<string, string> }).env, { MODE: 'staging' }, 'the image config follows the image');
    assert.deepEqual(updated.settings?.['service'], service, 'without --service the service spec is left as it was');

    await refused(['--name', 'svc-none', '--service'], legacyArchive({ ...SPEC, config: { Entrypoint: ['nowhere'] } }), /^the image's program "nowhere" is not in its PATH/);
    assert.ok(!(await configurationNames()).includes('svc-none'));
  });

  it('--layer puts existing versions on top of the image layers, and a missing one is refused before anything is stored', async () => {
    const site = path.join(root, 'site');
    await mkdir(site, { recursive: true });
    await writeFile(path.join(site, 'README'), 'site readme');
    const pushed = await runStrata(['push', site, '--name', 'site', '--version', 'v1'], server.env);
    assert.equal(pushed.code, 0, pushed.stderr);
    await imported(['--name', 'with-site', '--layer', 'site:v1'], legacyArchive(SPEC));
    const config = await configuration('with-site');
    assert.deepEqual(config.layers.map((l) => `${l.component}`), ['with-site.l0', 'with-site.l1', 'with-site.l2', 'site']);
    assert.equal(await readFile(path.join(await unpackConfiguration('with-site'), 'README'), 'utf8'), 'site readme');

    await refused(['--name', 'with-nothing', '--layer', 'site:v9'], legacyArchive(SPEC), /^layer site:v9 does not exist/);
    const components = (await api<{ components: { name: string }[] }>('GET', '/v1/components')).body.components.map((c) => c.name);
    assert.ok(!components.some((name) => name.startsWith('with-nothing')), 'no version was added');
  });

  it('an interrupted import removes its spilled archive and stores nothing', async () => {
    const tmp = path.join(root, 'tmp-interrupt');
    await mkdir(tmp);
    const child = spawn(process.execPath, [CLI, 'import-image', '--name', 'interrupted'], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '', TMPDIR: tmp, ...server.env } });
    const archive = legacyArchive(SPEC);
    child.stdin.write(archive.subarray(0, 6000));
    const deadline = Date.now() + 10_000;
    // Half the archive is in: wait until the first spilled file is on disk.
    while (!(await readdir(tmp, { recursive: true })).some((entry) => /archive\/\d+$/.test(String(entry)))) {
      assert.ok(Date.now() < deadline, 'the import never started spilling');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child.kill('SIGINT');
    const [code] = await once(child, 'close');
    assert.equal(code, 130);
    assert.deepEqual(await readdir(tmp), [], 'the temp directory is gone');
    assert.ok(!(await configurationNames()).includes('interrupted'));
  });

  it('refuses input that is not an image archive, each with one line and nothing stored', async () => {
    const before = await configurationNames();
    await refused([], Buffer.from('hello, not a tar at all, just some text that is long enough'.repeat(20)), /^not an image archive: not a tar archive/);
    await refused([], Buffer.alloc(0), /^not an image archive: the input is empty/);
    await refused([], tarBytes([{ path: 'hello.txt', content: 'hi' }]), /^not an image archive: it has neither manifest\.json \(docker save\) nor index\.json/);
    await refused([], legacyArchive(SPEC, { dropLayer: 1 }), /^manifest\.json names layer 1 "[0-9a-f]{64}\/layer\.tar", which is not in the archive$/);
    await refused([], legacyArchive(SPEC, { manifest: { Config: 'x' } }), /^manifest\.json is malformed/);
    await refused([], legacyArchive({ ...SPEC, ref: undefined }), /^the image has no tag to name its configuration after; give one with --name$/);
    await refused([], legacyArchive(SPEC).subarray(0, 3000), /archive is truncated/);
    await refused([], legacyArchive(SPEC, { replaceLayer: { index: 1, bytes: Buffer.from('garbage'.repeat(100)) } }), /^layer 1: not a tar archive: the first block is not a valid tar header$/);
    await refused([], ociArchive(SPEC, { gzip: true, dropLayer: 2 }), /^layer 2 sha256:[0-9a-f]{64} is not in the archive \(no blobs\/sha256\/[0-9a-f]{64}\)$/);
    await refused([], ociArchive(SPEC, { gzip: true, tamperLayer: 0 }), /^layer 0 blobs\/sha256\/[0-9a-f]{64} does not match its digest/);
    assert.deepEqual(await configurationNames(), before);
  });

  it('refuses unsafe layers and images over a limit, with nothing stored', async () => {
    const before = await configurationNames();
    const evil: ImageSpec = { ref: 'evil:1', layers: [[{ path: 'ok', content: 'fine' }], [{ path: '../escape', content: 'x' }]] };
    await refused([], legacyArchive(evil), /^layer 1: unsafe archive entry "\.\.\/escape": path escapes the tree with "\.\."$/);
    const link: ImageSpec = { ref: 'evil:2', layers: [[{ path: 'out', type: 'symlink', target: '../../etc' }]] };
    await refused([], legacyArchive(link), /^layer 0: unsafe archive entry "out": symlink target "\.\.\/\.\.\/etc" leaves the tree$/);
    const fifo: ImageSpec = { ref: 'evil:3', layers: [[{ path: 'pipe', type: 'fifo' }]] };
    await refused([], legacyArchive(fifo), /^layer 0: unsafe archive entry "pipe": fifo entries are not allowed/);
    await refused(['--max-layers', '2'], legacyArchive(SPEC), /^the image has 3 layers, over the limit of 2$/);
    await refused(['--max-entries', '10'], legacyArchive(SPEC), /^the image's layers have more than 10 entries$/);
    await refused(['--max-unpacked', '4KiB'], legacyArchive(SPEC), /^the image's layers unpack to more than 4096 bytes$/);
    await refused(['--max-bytes', '8KiB'], legacyArchive(SPEC), /^the image archive is larger than the limit of 8192 bytes$/);
    await refused(['--platform', 'linux/arm64'], legacyArchive(SPEC), /^the image is for linux\/amd64, not linux\/arm64$/);
    await refused(['--platform', 'amd64'], legacyArchive(SPEC), /^platform "amd64" must be written os\/arch/);
    await refused(['--name', 'a/b'], legacyArchive(SPEC), /^configuration name "a\/b" contains "\/"/);
    assert.deepEqual(await configurationNames(), before);
  });
});
