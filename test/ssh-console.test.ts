/**
 * The deploy-tools SSH front's console and SFTP, driven by OpenSSH's `ssh` and `sftp` against a
 * real `strata server`: the seed document's walkthrough word for word, every console command's
 * exact output, each error line and exit status, and audit entries naming the key.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runStrata } from './helpers/strata-server.ts';
import { clientOptions, run, startSshServer, type SshTestServer } from './helpers/ssh.ts';

const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');

/** deploy-tools' layer time column: the JSON's Ctime to the second. */
const seconds = (goTime: string): string => `${goTime.slice(0, 19)}Z`;

interface DeployToolsDoc {
  Name: string;
  Mtime: string;
  Hash: string;
  Layers: { Name: string; Version: string; File: string; Hash: string; Ctime: string }[];
}

describe('deploy-tools SSH front: the seed walkthrough and the console', () => {
  let root: string;
  let front: SshTestServer;
  let work: string;
  const hashes: Record<string, string> = {};

  /** Runs a console command by exec and returns what it printed. */
  const exec = (line: string) => front.ssh([line]);
  /** Fetches configs/NAME.json as deploy-agent and parses it. */
  const configDoc = async (name: string): Promise<{ text: string; doc: DeployToolsDoc }> => {
    const local = path.join(work, `${name}.fetched.json`);
    const fetched = await front.fetch(`configs/${name}.json`, local);
    assert.equal(fetched.code, 0, fetched.stderr);
    const text = await readFile(local, 'utf8');
    return { text, doc: JSON.parse(text) as DeployToolsDoc };
  };

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'strata-ssh-console-'));
    front = await startSshServer(root);
    work = path.join(root, 'work');
    const project = path.join(work, 'project1');
    await mkdir(project, { recursive: true });
    // The walkthrough's files and archives, made with the real tar as the document does.
    await writeFile(path.join(project, 'program.txt'), 'program body v1\n');
    await writeFile(path.join(project, 'config.txt'), 'config v1\n');
    for (const [archive, file] of [['code_v1.tar.gz', 'program.txt'], ['config_v1.tar.gz', 'config.txt']] as const) {
      const made = await run('tar', ['czf', archive, '-C', project, file], { cwd: work });
      assert.equal(made.code, 0, made.stderr);
      hashes[archive] = sha256(await readFile(path.join(work, archive)));
    }
    await writeFile(path.join(project, 'config.txt'), 'config v2\n');
    assert.equal((await run('tar', ['czf', 'config_v2.tar.gz', '-C', project, 'config.txt'], { cwd: work })).code, 0);
    hashes['config_v2.tar.gz'] = sha256(await readFile(path.join(work, 'config_v2.tar.gz')));
  });
  after(async () => {
    await front?.server.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('logs the host key fingerprint in OpenSSH form, the same one ssh-keygen computes', async () => {
    assert.match(front.server.logs(), new RegExp(`"msg":"host key fingerprint: ${front.fingerprint.replace(/[+/]/g, '\\$&')}"`));
    const keyFile = path.join(front.server.dataDir, 'ssh_host_ecdsa_key');
    const { mode } = await stat(keyFile);
    assert.equal(mode & 0o777, 0o600, 'the host key is private');
    const pub = await run('ssh-keygen', ['-y', '-f', keyFile]);
    await writeFile(path.join(root, 'host.pub'), pub.stdout);
    const listed = await run('ssh-keygen', ['-l', '-f', path.join(root, 'host.pub')]);
    assert.equal(listed.stdout.split(' ')[1], front.fingerprint);
    assert.match(listed.stdout, /\(ECDSA\)/);
    assert.match(front.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('follows the walkthrough: sftp uploads, an interactive session, deployctl-style addver, changeconf, the agent view', async () => {
    // $ echo "put code_v1.tar.gz" | sftp -P 2022 localhost   (interactive sftp, destination name irrelevant)
    for (const archive of ['code_v1.tar.gz', 'config_v1.tar.gz']) {
      const put = await run('sftp', [...clientOptions(front.operator), '-P', String(front.port), 'op@127.0.0.1'], { input: `put ${archive}\n`, cwd: work });
      assert.equal(put.code, 0, put.stderr);
    }
    // $ ssh -p 2022 localhost, then commands at the > prompt (no pty: stdin is a pipe)
    const session = await front.ssh([], {
      input: [
        `addver -name code -version v01 -hash ${hashes['code_v1.tar.gz']}`,
        `addver -name config -version v01 -hash ${hashes['config_v1.tar.gz']}`,
        'showcomp -name config',
        'addconf -name project1 -layer code:v01 -layer config:v01',
        'configurations',
        'showconf -name project1',
        '',
      ].join('\n'),
    });
    assert.equal(session.code, 0, session.stderr);
    assert.equal(session.stderr, '');
    const { doc } = await configDoc('project1');
    const [code, config] = doc.Layers;
    assert.equal(session.stdout, [
      '> ', '> ', `> ${seconds(config!.Ctime)}   v01   \n`,
      '> ', '> project1\n',
      `> code     v01   ${seconds(code!.Ctime)}   \nconfig   v01   ${seconds(config!.Ctime)}   \n`,
      '> ',
    ].join(''));

    // $ deployctl addver -name config -version v02 -file config_v2.tar.gz: an sftp upload, then this exact exec
    const upload = await front.sftp('put config_v2.tar.gz whatever-name\n', { cwd: work });
    assert.equal(upload.code, 0, upload.stderr);
    const addver = await exec(`addver -name="config" -version="v02" -hash=${hashes['config_v2.tar.gz']}`);
    assert.deepEqual(addver, { code: 0, stdout: '', stderr: '' });

    // $ ssh -p 2022 localhost changeconf -name project1 -component config -version v02
    assert.deepEqual(await exec('changeconf -name project1 -component config -version v02'), { code: 0, stdout: '', stderr: '' });

    // $ sftp -P 2022 deploy-agent@localhost:configs/project1.json
    const changed = await configDoc('project1');
    assert.deepEqual(changed.doc.Layers.map((l) => [l.Name, l.Version, l.Hash, l.File]), [
      ['code', 'v01', hashes['code_v1.tar.gz'], `files/${hashes['code_v1.tar.gz']}`],
      ['config', 'v02', hashes['config_v2.tar.gz'], `files/${hashes['config_v2.tar.gz']}`],
    ]);
    assert.equal(changed.doc.Hash, sha256(`${hashes['code_v1.tar.gz']}\n${hashes['config_v2.tar.gz']}\n`), "deploy-tools' configuration hash");
    assert.match(changed.text, /^\{\n\t"Name": "project1",\n\t"Mtime": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z",\n/, 'tab-indented, Go times');
    assert.ok(changed.text.endsWith('}\n'));
    const viaHttp = await runStrata(['showconf', '--name', 'project1', '--format', 'deploy-tools'], front.server.env);
    assert.equal(changed.text, viaHttp.stdout, 'the SFTP view and the HTTP API render the same document');

    // The agent fetches files/<hash>: the very bytes uploaded.
    const local = path.join(work, 'fetched-config-v2');
    const got = await front.fetch(`files/${hashes['config_v2.tar.gz']}`, local);
    assert.equal(got.code, 0, got.stderr);
    assert.deepEqual(await readFile(local), await readFile(path.join(work, 'config_v2.tar.gz')));
    const listed = await run('sftp', [...clientOptions(front.agent), '-b', '-', '-P', String(front.port), 'deploy-agent@127.0.0.1'], { input: 'ls /\nls /configs\nls /files\n' });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /\/configs\/project1\.json/);
    assert.ok(listed.stdout.includes(`/files/${hashes['config_v2.tar.gz']}`));
  });

  it('prints showconf -v, showcomp, components, configurations and help exactly as deploy-tools does', async () => {
    const { doc } = await configDoc('project1');
    const [code, config] = doc.Layers;
    const verbose = await exec('showconf -name project1 -v');
    assert.equal(verbose.code, 0, verbose.stderr);
    assert.equal(verbose.stdout, `Name:\tproject1\nMtime:\t${seconds(doc.Mtime)}\nHash:\t${doc.Hash}\n\n`
      + `code     v01   ${seconds(code!.Ctime)}   \nconfig   v02   ${seconds(config!.Ctime)}   \n`);
    assert.equal((await exec("showconf -name 'project1'")).stdout, (await exec('showconf -name="project1"')).stdout, 'quoted values');
    const versions = await exec('showcomp -name config');
    assert.match(versions.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ   v01   \n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ   v02   \n$/);
    assert.deepEqual(await exec('components'), { code: 0, stdout: 'code\nconfig\n', stderr: '' });
    assert.deepEqual(await exec('configurations'), { code: 0, stdout: 'project1\n', stderr: '' });
    const help = await exec('help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^addver {10}add new component version from previously uploaded file\n/);
    assert.match(help.stdout, /\ndelconf {9}delete configuration\nimport-image {4}import docker save output read from the session's input \(Strata\)\n\nuse -h flag to get more help on a specific command\n$/);
  });

  it('bumpconf prints the roll-back hint when it changes a layer and nothing when it is already newest', async () => {
    await writeFile(path.join(work, 'project1', 'config.txt'), 'config v3\n');
    assert.equal((await run('tar', ['czf', 'config_v3.tar.gz', '-C', path.join(work, 'project1'), 'config.txt'], { cwd: work })).code, 0);
    assert.equal((await front.sftp('put config_v3.tar.gz\n', { cwd: work })).code, 0);
    const hash = sha256(await readFile(path.join(work, 'config_v3.tar.gz')));
    assert.equal((await exec(`addver -name config -version v03 -hash ${hash}`)).code, 0);
    assert.deepEqual(await exec('bumpconf -name project1 -component config'), {
      code: 0, stderr: '', stdout: 'to roll back run:\n\tchangeconf -name="project1" -component="config" -version="v02"\n',
    });
    assert.deepEqual(await exec('bumpconf -name project1 -component config'), { code: 0, stdout: '', stderr: '' });
    assert.equal((await configDoc('project1')).doc.Layers[1]!.Version, 'v03');
  });

  it('prints one error line and exits 1 for each refusal, and keeps the data intact', async () => {
    const refusals: [string, string][] = [
      [`addver -name code -version v01 -hash ${hashes['code_v1.tar.gz']}`, 'version "v01" already exists\n'],
      ['showconf -name nope', 'configuration "nope" not found\n'],
      ['delconf -name project1', 'Run command with -force flag to confirm removal\n'],
      ['frobnicate', 'Unknown command, supported commands are:\nhelp, addver, addconf, changeconf, showconf, components, configurations, showcomp, delver, delcomp, delconf\n'],
      ['showconf', 'name should be set\n'],
      ['showcomp -name nope', 'component "nope" not found\n'],
      ['addver -name code -version v9', 'name, version and hash should all be set\n'],
      ['addver -name code -version v9 -hash abc', 'hash should be a hex representation of content sha256 sum, 64 chars long\n'],
      ['changeconf -name project1 -component config -version v99', 'version "v99" of component "config" not found\n'],
      ['addconf -name other -layer codev01', 'invalid value "codev01" for flag -layer: layer "codev01" must be written component:version\n'],
      ['showconf -name "unterminated', 'invalid command line string\n'],
    ];
    for (const [line, stderr] of refusals) {
      assert.deepEqual(await exec(line), { code: 1, stdout: '', stderr }, line);
    }
    const unknownHash = await exec(`addver -name code -version v9 -hash ${'ab'.repeat(32)}`);
    assert.equal(unknownHash.code, 1);
    assert.equal(unknownHash.stderr, `blob ${'ab'.repeat(32)} not found: upload it first\n`);
    const inUse = await exec('delver -name code -version v01');
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /^[^\n]+\n$/, 'one line');
    const badFlag = await exec('showconf -bogus');
    assert.equal(badFlag.code, 1);
    assert.equal(badFlag.stderr, 'flag provided but not defined: -bogus\nUsage of showconf:\n  -name string\n    \tconfiguration name\n  -v\tshow extra details\n');
    // Nothing above changed anything.
    assert.deepEqual(await exec('configurations'), { code: 0, stdout: 'project1\n', stderr: '' });
    assert.deepEqual((await configDoc('project1')).doc.Layers.map((l) => l.Version), ['v01', 'v03']);
  });

  it('addconf replaces an existing configuration as deploy-tools did, keeping the old revision in the history', async () => {
    assert.deepEqual(await exec('addconf -name second -layer code:v01'), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(await exec('addconf -name="second" -layer="config:v03"'), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual((await configDoc('second')).doc.Layers.map((l) => `${l.Name}:${l.Version}`), ['config:v03']);
    const history = await runStrata(['history', '--name', 'second', '--json'], front.server.env);
    assert.equal(history.code, 0, history.stderr);
    const revisions = (JSON.parse(history.stdout) as { revisions: { revision: number; layers: { component: string }[] }[] }).revisions;
    assert.deepEqual(revisions.map((r) => [r.revision, r.layers.map((l) => l.component).join(',')]), [[1, 'code'], [2, 'config']]);
    assert.deepEqual(await exec('delconf -name second -force'), { code: 0, stdout: '', stderr: '' });
  });

  it('audits console writes with the key fingerprint and comment, and deletes with -force', async () => {
    const fingerprint = (await run('ssh-keygen', ['-l', '-f', `${front.operator.file}.pub`])).stdout.split(' ')[1]!;
    assert.deepEqual(await exec('delconf -name project1 -force'), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(await exec('configurations'), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(await exec('delver -name code -version v01'), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(await exec('delcomp -name config'), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(await exec('components'), { code: 0, stdout: '', stderr: '' });
    const audit = await runStrata(['audit', '--json'], front.server.env);
    assert.equal(audit.code, 0, audit.stderr);
    const entries = (JSON.parse(audit.stdout) as { entries: { actor: string; action: string; target: string; result: string }[] }).entries;
    const actor = `ssh:${fingerprint}(operator@test)`;
    const mine = entries.filter((e) => e.actor === actor).map((e) => `${e.action} ${e.target} ${e.result}`);
    assert.ok(mine.includes('version.add config:v02 ok'), mine.join('\n'));
    assert.ok(mine.includes('version.add code:v01 VERSION_EXISTS'), 'refusals are audited too');
    assert.ok(mine.includes('configuration.delete project1 CONFIRMATION_REQUIRED'));
    assert.ok(mine.includes('configuration.delete project1 ok'));
    assert.ok(mine.includes('component.delete config ok'));
  });

  it('serves the interactive console over a pty with a > prompt and terminal line endings', async () => {
    const session = await front.ssh([], { tty: true, input: 'help\nfrobnicate\n' });
    assert.equal(session.code, 0, session.stderr);
    assert.match(session.stdout, /> /);
    assert.match(session.stdout, /addver {10}add new component version from previously uploaded file\r\n/);
    assert.match(session.stdout, /Unknown command, supported commands are:\r\n/, 'errors reach the terminal too');
    const endless = await front.ssh([], { input: `${'x'.repeat(200_000)}` });
    assert.match(endless.stderr, /^line longer than 65536 characters: closing the session\n/);
    const exec = await front.ssh(['help'], { tty: true });
    assert.equal(exec.code, 0, exec.stderr);
    assert.match(exec.stdout, /^addver {10}add new component version from previously uploaded file\r\naddconf /, 'a command run with a pty gets terminal line endings too');
    assert.doesNotMatch(exec.stdout, /[^\r]\n/);
  });
});
