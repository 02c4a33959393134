/**
 * Who may do what on the deploy-tools SSH front, and its limits: operator and agent keys kept
 * apart, agents read-only without exec, operators upload-only, uploads inspected and size-bound,
 * handshake timeout, connection lifetime, connections at once, key files that must hold a key,
 * and a host key that survives restarts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { runStrata } from './helpers/strata-server.ts';
import { clientOptions, makeKey, randomArchive, run, startSshServer } from './helpers/ssh.ts';
import { tempDir } from './helpers/temp-dir.ts';
import ssh2 from 'ssh2';
import type { SFTPWrapper } from 'ssh2';
import { findKey, parseAuthorizedKeys } from '../src/ssh/authorized-keys.ts';

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

describe('deploy-tools SSH front: access and limits', () => {
  it('keeps operator and agent keys apart, refuses exec to agents and writes through the agent view', async (t) => {
    const root = await tempDir(t);
    const front = await startSshServer(root);
    t.after(() => front.server.stop());
    const stranger = await makeKey(root, 'stranger');

    const operatorAsAgent = await front.ssh(['components'], { user: 'deploy-agent', key: front.operator });
    assert.equal(operatorAsAgent.code, 255);
    assert.match(operatorAsAgent.stderr, /Permission denied \(publickey\)/);
    const agentAsOperator = await front.ssh(['components'], { user: 'alice', key: front.agent });
    assert.equal(agentAsOperator.code, 255);
    assert.match(agentAsOperator.stderr, /Permission denied \(publickey\)/);
    const unknown = await front.ssh(['components'], { key: stranger });
    assert.equal(unknown.code, 255);
    assert.match(unknown.stderr, /Permission denied \(publickey\)/);
    const agentFetchWithOperatorKey = await front.fetch('configs/x.json', path.join(root, 'x.json'), { key: front.operator });
    assert.notEqual(agentFetchWithOperatorKey.code, 0);

    const agentExec = await front.ssh(['components'], { user: 'deploy-agent', key: front.agent });
    assert.equal(agentExec.code, 255);
    assert.match(agentExec.stderr, /exec request failed on channel 0/);
    const agentShell = await front.ssh([], { user: 'deploy-agent', key: front.agent, input: 'components\n' });
    assert.notEqual(agentShell.code, 0);
    assert.doesNotMatch(agentShell.stdout, /> /, 'no console for agents');

    // An operator with any user name gets the console.
    assert.deepEqual(await front.ssh(['components'], { user: 'anyone-else' }), { code: 0, stdout: '', stderr: '' });

    const archive = await randomArchive(root, 'a', 1000);
    const agentPut = await run('sftp', [...clientOptions(front.agent), '-b', '-', '-P', String(front.port), 'deploy-agent@127.0.0.1'], { input: `put ${archive.file} /files/x\n` });
    assert.equal(agentPut.code, 1, 'an agent cannot upload');
    assert.match(agentPut.stderr, /Permission denied/);
    const agentRemove = await run('sftp', [...clientOptions(front.agent), '-b', '-', '-P', String(front.port), 'deploy-agent@127.0.0.1'], { input: 'rm /files/x\nmkdir /y\n' });
    assert.equal(agentRemove.code, 1);
    const missing = await front.fetch('configs/nope.json', path.join(root, 'nope.json'));
    assert.notEqual(missing.code, 0, 'a configuration that does not exist cannot be read');
    const outside = await front.fetch('../../etc/passwd', path.join(root, 'passwd'));
    assert.notEqual(outside.code, 0, 'nothing outside the virtual tree');

    // Operators may upload but not read, list or delete.
    const operatorGet = await front.sftp('get /configs/x.json\n', { cwd: root });
    assert.equal(operatorGet.code, 1);
    const operatorLs = await front.sftp('ls /files\n', { cwd: root });
    assert.equal(operatorLs.code, 1);
    assert.equal((await front.sftp(`put ${archive.file} any/name/at/all\n`, { cwd: root })).code, 0);
    assert.deepEqual(await front.ssh([`addver -name a -version v1 -hash ${archive.hash}`]), { code: 0, stdout: '', stderr: '' });
    assert.match(front.server.logs(), /"role":"agent"/);
  });

  it("serves Go-style SFTP clients: uploads opened read-write (deployctl), and deploy-agent's relative paths and pipelined reads", async (t) => {
    const root = await tempDir(t);
    const front = await startSshServer(root);
    t.after(() => front.server.stop());
    const archive = await randomArchive(root, 'go', 100_000);
    const client = new ssh2.Client();
    t.after(() => client.end());
    client.connect({ host: '127.0.0.1', port: front.port, username: process.env['USER'] ?? 'ops', privateKey: await readFile(front.operator.file), readyTimeout: 10_000 });
    await once(client, 'ready');
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((error, channel) => (error ? reject(error) : resolve(channel))));
    const handle = await new Promise<Buffer>((resolve, reject) => sftp.open('upload', 'w+', (error, h) => (error ? reject(error) : resolve(h))));
    const bytes = await readFile(archive.file);
    // Several writes in flight at once, as Go's client sends them.
    await Promise.all([0, 1, 2, 3].map((part) => {
      const start = Math.floor((bytes.length * part) / 4);
      const end = Math.floor((bytes.length * (part + 1)) / 4);
      return new Promise<void>((resolve, reject) => sftp.write(handle, bytes, start, end - start, start, (error) => (error ? reject(error) : resolve())));
    }));
    const readBack = await new Promise<Error | undefined>((resolve) => sftp.read(handle, Buffer.alloc(10), 0, 10, 0, (error) => resolve(error ?? undefined)));
    assert.ok(readBack, 'an upload cannot be read back');
    await new Promise<void>((resolve, reject) => sftp.close(handle, (error) => (error ? reject(error) : resolve())));
    const added = await new Promise<{ code: number; out: string }>((resolve, reject) => client.exec(`addver -name="go" -version="v1" -hash=${archive.hash}`, (error, stream) => {
      if (error) return reject(error);
      let out = '';
      stream.on('data', (chunk: Buffer) => (out += chunk)).stderr.on('data', (chunk: Buffer) => (out += chunk));
      stream.on('exit', (code: number) => resolve({ code, out }));
    }));
    assert.deepEqual(added, { code: 0, out: '' });
    assert.equal((await front.ssh(['addconf -name go -layer go:v1'])).code, 0);

    // deploy-agent's reads: relative paths, FSTAT, and many reads in flight at once.
    const agentClient = new ssh2.Client();
    t.after(() => agentClient.end());
    agentClient.connect({ host: '127.0.0.1', port: front.port, username: 'deploy-agent', privateKey: await readFile(front.agent.file), readyTimeout: 10_000 });
    await once(agentClient, 'ready');
    const view = await new Promise<SFTPWrapper>((resolve, reject) => agentClient.sftp((error, channel) => (error ? reject(error) : resolve(channel))));
    const json = await new Promise<Buffer>((resolve, reject) => view.readFile('configs/go.json', (error, data) => (error ? reject(error) : resolve(data))));
    const doc = JSON.parse(json.toString()) as { Layers: { File: string; Hash: string }[] };
    assert.equal(doc.Layers[0]!.Hash, archive.hash);
    const fetched = path.join(root, 'fetched.tar.gz');
    await new Promise<void>((resolve, reject) => view.fastGet(doc.Layers[0]!.File, fetched, { concurrency: 16, chunkSize: 4096 }, (error) => (error ? reject(error) : resolve())));
    assert.deepEqual(await readFile(fetched), bytes, 'pipelined reads reassemble the blob');
    const listed = await new Promise<string[]>((resolve, reject) => view.readdir('/configs', (error, list) => (error ? reject(error) : resolve(list.map((e) => e.filename)))));
    assert.deepEqual(listed, ['go.json']);
    const written = await new Promise<Error | undefined>((resolve) => view.writeFile('configs/go.json', 'x', (error) => resolve(error ?? undefined)));
    assert.ok(written, 'the agent view is read-only');
  });

  it('refuses uploads that are not archives or are over --max-upload, keeping nothing', async (t) => {
    const root = await tempDir(t);
    const front = await startSshServer(root, ['--max-upload', '8KiB']);
    t.after(() => front.server.stop());

    const text = path.join(root, 'notes.txt');
    await writeFile(text, 'not an archive\n');
    const notArchive = await front.sftp(`put ${text}\n`, { cwd: root });
    assert.equal(notArchive.code, 1, 'the close fails');
    const notArchiveHash = sha256(await readFile(text));
    const addNotArchive = await front.ssh([`addver -name n -version v1 -hash ${notArchiveHash}`]);
    assert.deepEqual(addNotArchive, { code: 1, stdout: '', stderr: `blob ${notArchiveHash} not found: upload it first\n` });

    const truncated = path.join(root, 'truncated.tar.gz');
    await writeFile(truncated, gzipSync(Buffer.alloc(4096)).subarray(0, 20));
    assert.equal((await front.sftp(`put ${truncated}\n`, { cwd: root })).code, 1);

    const big = await randomArchive(root, 'big', 64 * 1024);
    const tooBig = await front.sftp(`put ${big.file}\n`, { cwd: root });
    assert.equal(tooBig.code, 1);
    const addBig = await front.ssh([`addver -name big -version v1 -hash ${big.hash}`]);
    assert.equal(addBig.code, 1);
    assert.match(addBig.stderr, /not found: upload it first/);
    assert.match(front.server.logs(), /"msg":"ssh upload refused"/);

    const small = await randomArchive(root, 'small', 1024);
    assert.equal((await front.sftp(`put ${small.file}\n`, { cwd: root })).code, 0, 'an archive within the limit is kept');
    assert.equal((await front.ssh([`addver -name small -version v1 -hash ${small.hash}`])).code, 0);
    const versions = await runStrata(['showcomp', '--name', 'small', '--json'], front.server.env);
    assert.equal((JSON.parse(versions.stdout) as { versions: { blob: string }[] }).versions[0]!.blob, small.hash, 'the HTTP API sees the version the console added');
  });

  it('closes silent connections after the handshake timeout and any connection at its deadline, and bounds connections', async (t) => {
    const root = await tempDir(t);
    const front = await startSshServer(root, ['--ssh-handshake-timeout', '1s', '--ssh-deadline', '3s', '--ssh-max-sessions', '2']);
    t.after(() => front.server.stop());

    // A TCP client that never speaks SSH is dropped after the handshake timeout.
    const silent = connect(front.port, '127.0.0.1');
    silent.on('data', () => undefined);
    const started = Date.now();
    await once(silent, 'close');
    const waited = Date.now() - started;
    assert.ok(waited >= 800 && waited < 10_000, `closed after ${waited} ms`);

    // Two silent connections use up --ssh-max-sessions 2: a third client is turned away at once.
    const holders = [connect(front.port, '127.0.0.1'), connect(front.port, '127.0.0.1')];
    for (const holder of holders) {
      holder.on('error', () => undefined);
      await once(holder, 'connect');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    const turnedAway = await front.ssh(['components']);
    assert.equal(turnedAway.code, 255);
    for (const holder of holders) holder.destroy();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await front.ssh(['components'])).code, 0, 'a free slot admits the next client');

    // An interactive session that stays open is closed when its lifetime runs out.
    const session = spawn('ssh', [...clientOptions(front.operator), '-T', '-p', String(front.port), 'op@127.0.0.1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    t.after(() => session.kill('SIGKILL'));
    let output = '';
    session.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const opened = Date.now();
    const [code] = (await Promise.race([once(session, 'exit'), new Promise((resolve) => setTimeout(() => resolve(['still open']), 20_000))])) as [unknown];
    assert.notEqual(code, 'still open', 'the deadline closed the connection');
    const lived = Date.now() - opened;
    assert.ok(lived >= 2_500, `lived ${lived} ms`);
    assert.match(output, /^> /, 'the console was up until then');
    session.stdin.end();
  });

  it('refuses to start the front when a key file holds no key, and keeps its host key across restarts', async (t) => {
    const root = await tempDir(t);
    const key = await makeKey(root, 'op');
    await writeFile(path.join(root, 'good.keys'), `${key.publicLine}\n`);
    await writeFile(path.join(root, 'empty.keys'), '# nobody yet\n\n');
    const data = path.join(root, 'data');
    const base = ['server', '--data', data, '--listen', '127.0.0.1:0', '--insecure-http', '--ssh-listen', '127.0.0.1:0'];

    const emptyAgents = await runStrata([...base, '--ssh-operator-keys', path.join(root, 'good.keys'), '--ssh-agent-keys', path.join(root, 'empty.keys')]);
    assert.equal(emptyAgents.code, 1);
    assert.equal(emptyAgents.stderr, `agent keys (--ssh-agent-keys) file ${path.join(root, 'empty.keys')} has no public key: the SSH front needs at least one\n`);
    const emptyOperators = await runStrata([...base, '--ssh-operator-keys', path.join(root, 'empty.keys'), '--ssh-agent-keys', path.join(root, 'good.keys')]);
    assert.equal(emptyOperators.code, 1);
    assert.match(emptyOperators.stderr, /^operator keys \(--ssh-operator-keys\) file .* has no public key/);
    const absent = await runStrata([...base, '--ssh-operator-keys', path.join(root, 'absent.keys'), '--ssh-agent-keys', path.join(root, 'good.keys')]);
    assert.equal(absent.code, 1);
    assert.match(absent.stderr, /^cannot read operator keys \(--ssh-operator-keys\) file .*absent\.keys: ENOENT\n$/);
    await writeFile(path.join(root, 'typo.keys'), `${key.publicLine}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI typo@host\n`);
    const typo = await runStrata([...base, '--ssh-operator-keys', path.join(root, 'typo.keys'), '--ssh-agent-keys', path.join(root, 'good.keys')]);
    assert.equal(typo.code, 1);
    assert.equal(typo.stderr, `operator keys (--ssh-operator-keys) file ${path.join(root, 'typo.keys')}: line 2 is not a public key\n`);
    const noKeys = await runStrata([...base]);
    assert.equal(noKeys.code, 1);
    assert.equal(noKeys.stderr, '--ssh-listen needs --ssh-operator-keys and --ssh-agent-keys\n');
    const badDeadline = await runStrata([...base, '--ssh-operator-keys', path.join(root, 'good.keys'), '--ssh-agent-keys', path.join(root, 'good.keys'), '--ssh-deadline', 'soon']);
    assert.equal(badDeadline.code, 2);
    assert.match(badDeadline.stderr, /^strata: --ssh-deadline: invalid duration "soon"/);

    // deploy-registry's host_key (a SEC1 PEM, as ssh-keygen -m PEM writes) is taken over with its fingerprint.
    const runDir = path.join(root, 'run');
    await mkdir(path.join(runDir, 'data'), { recursive: true });
    const legacy = await run('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '256', '-m', 'PEM', '-N', '', '-f', path.join(runDir, 'data', 'ssh_host_ecdsa_key')]);
    assert.equal(legacy.code, 0, legacy.stderr);
    const legacyFingerprint = (await run('ssh-keygen', ['-l', '-f', path.join(runDir, 'data', 'ssh_host_ecdsa_key.pub')])).stdout.split(' ')[1];
    const first = await startSshServer(runDir);
    const fingerprint = first.fingerprint;
    assert.equal(fingerprint, legacyFingerprint);
    assert.equal(await first.server.stop(), 0, 'stops cleanly with the front running');
    const again = await startSshServer(path.join(root, 'run'));
    t.after(() => again.server.stop());
    assert.equal(again.fingerprint, fingerprint, 'the host key is reused');
  });
});

describe('authorized_keys files', () => {
  it('reads keys after options, with comments, of every type ssh-keygen makes, and finds them by blob', async (t) => {
    const root = await tempDir(t);
    const ed = await makeKey(root, 'ed', 'ed25519', 'alice@laptop');
    const ec = await makeKey(root, 'ec', 'ecdsa', 'ci runner');
    const rsa = await makeKey(root, 'rsa', 'rsa', '');
    const text = `# operators\n\nfrom="10.0.0.0/8,127.0.0.1",command="echo a b" ${ed.publicLine}\n${ec.publicLine}\n${rsa.publicLine}\n`;
    const keys = parseAuthorizedKeys(text);
    assert.deepEqual(keys.map((k) => k.comment), ['alice@laptop', 'ci runner', '']);
    for (const pair of [ed, ec, rsa]) {
      const listed = await run('ssh-keygen', ['-l', '-f', `${pair.file}.pub`]);
      const fingerprint = listed.stdout.split(' ')[1]!;
      const blob = Buffer.from(pair.publicLine.split(' ')[1]!, 'base64');
      assert.equal(findKey(keys, blob)?.fingerprint, fingerprint);
    }
    const stranger = await makeKey(root, 'stranger');
    assert.equal(findKey(keys, Buffer.from(stranger.publicLine.split(' ')[1]!, 'base64')), undefined);
    assert.deepEqual(parseAuthorizedKeys('# only comments\n\n'), []);
    assert.throws(() => parseAuthorizedKeys(`${ed.publicLine}\nssh-ed25519 AAAAtruncated alice\n`), /^Error: line 2 is not a public key$/);
  });
});
