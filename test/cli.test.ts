/**
 * End to end: a real `strata server` process and the real CLI as child processes, over TLS
 * pinned by fingerprint. The deployctl verbs and their outputs, the bad inputs beside the good.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { runStrata, startServer, type TestServer } from './helpers/strata-server.ts';

let root: string;
let server: TestServer;

async function tree(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(root, 'trees', name);
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), content);
  }
  return dir;
}

async function ok(args: string[], env = server.env): Promise<string> {
  const result = await runStrata(args, env);
  assert.equal(result.code, 0, `strata ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

async function fails(args: string[], pattern: RegExp, code = 1, env = server.env): Promise<void> {
  const result = await runStrata(args, env);
  assert.equal(result.code, code, `strata ${args.join(' ')} should exit ${code}: ${result.stdout}${result.stderr}`);
  assert.match(result.stderr.trimEnd(), pattern);
  assert.equal(result.stderr.trim().split('\n').length, 1, `one line on stderr, got: ${result.stderr}`);
  assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/, 'no stack trace');
}

describe('strata CLI against a real server', () => {
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'strata-cli-'));
    server = await startServer(path.join(root, 'data'));
  });
  after(async () => {
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('wrote admin.env and join-token with mode 0600 on first start', async () => {
    for (const file of ['admin.env', 'join-token']) {
      const info = await stat(path.join(server.dataDir, file));
      assert.equal(info.mode & 0o777, 0o600, file);
    }
    const join = await readFile(path.join(server.dataDir, 'join-token'), 'utf8');
    assert.ok(join.includes(server.fingerprint), 'the join token carries the CA fingerprint');
    assert.ok(!server.logs().includes(server.token.slice('strata_'.length + 13)), 'the admin secret is never logged');
  });

  it('pushes directories, composes and shows a configuration like deployctl', async () => {
    const code = await tree('code', { 'index.html': '<h1>v1</h1>', 'bin/run.sh': '#!/bin/sh\necho hi\n' });
    const config = await tree('config', { 'app.conf': 'port=8080\n' });
    assert.match(await ok(['push', code, '--name', 'code', '--version', 'v1']), /^pushed code:v1: \d+ entries/);
    assert.match(await ok(['push', config, '-name', 'config', '-version=v1']), /^pushed config:v1/);
    await fails(['push', code, '--name', 'code', '--version', 'v1'], /^version "v1" (of component "code" )?already exists/);

    assert.match(await ok(['addconf', '--name', 'project1', '--layer', 'code:v1', '--layer', 'config:v1']), /^configuration project1 revision 1 \(id [0-9a-f]{64}\)$/m);
    const shown = await ok(['showconf', '-name', 'project1']);
    assert.match(shown, /^code     v1   \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ   \nconfig   v1   \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ   \n$/);
    const verbose = await ok(['showconf', '-name', 'project1', '-v']);
    assert.match(verbose, /^Name:\tproject1\nMtime:\t\S+Z\nHash:\t[0-9a-f]{64}\n\ncode     v1/);
    const json = JSON.parse(await ok(['showconf', '--name', 'project1', '--format', 'deploy-tools']));
    assert.equal(json.Hash, /Hash:\t([0-9a-f]{64})/.exec(verbose)![1]);
    assert.equal(await ok(['components']), 'code\nconfig\n');
    assert.equal(await ok(['configurations']), 'project1\n');
    assert.match(await ok(['showcomp', '--name', 'code']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ   v1   \n$/);
  });

  it('changes, bumps, lists history and rolls back', async () => {
    const config2 = await tree('config2', { 'app.conf': 'port=9090\n' });
    await ok(['push', config2, '--name', 'config', '--version', 'v2']);
    assert.match(await ok(['changeconf', '--name', 'project1', '--component', 'config', '--version', 'v2']), /revision 2: config is now v2/);
    assert.equal(await ok(['bumpconf', '--name', 'project1', '--component', 'config']), '', 'no output when already at the newest');
    const history = await ok(['history', '--name', 'project1']);
    assert.match(history, /^REVISION +TIME +ID +LAYERS/);
    assert.match(history, /\n2 +\S+ +[0-9a-f]{12} +code:v1 config:v2/);
    assert.match(await ok(['rollback', '--name', 'project1']), /revision 3: rollback to revision 1/);
    const current = JSON.parse(await ok(['showconf', '--name', 'project1', '--json']));
    assert.equal(current.layers[1].version, 'v1');
    const revisions = JSON.parse(await ok(['history', '--name', 'project1', '--json'])).revisions;
    assert.equal(revisions.length, 3);
  });

  it('refuses bad input with one line and a non-zero exit, changing nothing', async () => {
    const before = await ok(['showconf', '--name', 'project1', '--json']);
    await fails(['showconf', '--name', 'nope'], /^configuration "nope" not found$/);
    await fails(['addconf', '--name', 'project1', '--layer', 'code:v1'], /already exists; use --force/);
    await fails(['addconf', '--name', 'p2', '--layer', 'codev1'], /must be written component:version/, 2);
    await fails(['addconf', '--name', 'p2', '--layer', 'code:v1', '--layer', 'code:v1'], /named twice/);
    await fails(['addconf', '--name', 'bad/name', '--layer', 'code:v1'], /contains "\/"/);
    await fails(['addconf', '--name', 'p2', '--layer', 'code:v7'], /version "v7" of component "code" not found/);
    await fails(['changeconf', '--name', 'project1', '--component', 'code', '--version', 'nope'], /not found/);
    await fails(['addver', '--name', 'code', '--version', 'v9', '--hash', 'abc'], /64 lower-case hex/);
    await fails(['addver', '--name', 'code', '--version', 'v9', '--hash', 'f'.repeat(64)], /not found|not been uploaded/);
    await fails(['delconf', '--name', 'project1'], /^Run command with -force flag to confirm removal$/);
    await fails(['delver', '--name', 'code', '--version', 'v1'], /used|in use/i);
    await fails(['rollback', '--name', 'project1', '--to', '99'], /no revision 99/);
    await fails(['showconf'], /required option '--name/, 2);
    assert.equal(await ok(['showconf', '--name', 'project1', '--json']), before);
  });

  it('refuses files that are not archives at upload time', async () => {
    const junk = path.join(root, 'junk.tar.gz');
    await writeFile(junk, 'not gzip at all, just text that goes on and on'.repeat(20));
    await fails(['addver', '--name', 'junk', '--version', 'v1', '--file', junk], /archive/i);
    await fails(['addver', '--name', 'junk', '--version', 'v1', '--file', path.join(root, 'missing.tgz')], /cannot read .*ENOENT/);
    assert.doesNotMatch(await ok(['components']), /junk/);
  });

  it('manages tokens by role and refuses wrong, revoked and under-privileged ones', async () => {
    const viewer = (await ok(['token', 'create', '--role', 'viewer', '--name', 'ro'])).trim();
    const viewerEnv = { ...server.env, STRATA_TOKEN: viewer };
    assert.equal(await ok(['configurations'], viewerEnv), 'project1\n');
    await fails(['addconf', '--name', 'x', '--layer', 'code:v1'], /role viewer may not/, 1, viewerEnv);
    const list = await ok(['token', 'list']);
    assert.match(list, /^ID +KIND +ROLE +NAME/);
    const id = /^([0-9a-f]{12}) +api +viewer +ro/m.exec(list)![1]!;
    assert.match(await ok(['token', 'revoke', id]), /revoked token/);
    await fails(['configurations'], /revoked/, 1, viewerEnv);
    await fails(['configurations'], /invalid API token|malformed/, 1, { ...server.env, STRATA_TOKEN: 'strata_000000000000_' + 'x'.repeat(32) });
    await fails(['token', 'create', '--role', 'root'], /unknown role/, 2);
    assert.match(await ok(['join-token', 'create', '--name', 'rack-7', '--ttl', '24h']), /^strata_join_|^\S+\n$/);
    await fails(['join-token', 'create', '--ttl', '4000d'], /^strata: --ttl may be at most 3650d \(ten years\)$/, 2);
    await fails(['join-token', 'create', '--ttl', 'soon'], /invalid duration "soon"/, 2);
  });

  it('refuses a wrong fingerprint and an unreachable server', async () => {
    await fails(['configurations'], /fingerprint mismatch: expected 0{64}, server presents [0-9a-f]{64}/, 1, { ...server.env, STRATA_FINGERPRINT: '0'.repeat(64) });
    await fails(['configurations'], /cannot reach the server at https:\/\/127\.0\.0\.1:1: ECONNREFUSED/, 1, { ...server.env, STRATA_SERVER: 'https://127.0.0.1:1' });
    await fails(['configurations'], /no server given/, 2, { STRATA_TOKEN: server.token });
  });

  it('records the audit log and shows it', async () => {
    const audit = await ok(['audit', '--limit', '500']);
    assert.match(audit, /^SEQ +TIME +ACTOR +ACTION +TARGET +RESULT/);
    assert.match(audit, /configuration\.put +project1 +ok/);
    assert.match(audit, /configuration\.delete +project1 +CONFIRMATION_REQUIRED/);
    const entries = JSON.parse(await ok(['audit', '--json'])).entries;
    assert.ok(entries.length > 0 && entries.every((e: { seq: number }) => typeof e.seq === 'number'));
  });

  it('prints help with an example for every command', async () => {
    const help = await ok(['--help']);
    const section = help.slice(help.indexOf('Commands:'));
    const commands = [...section.matchAll(/^  ([a-z-]+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    assert.ok(commands.length >= 15, `commands: ${commands}`);
    for (const command of commands) {
      const text = await ok([command, '--help']);
      const sub = text.includes('Commands:') ? [...text.slice(text.indexOf('Commands:')).matchAll(/^  ([a-z-]+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help') : [];
      // A command family (token, group, …) has the examples on each of its subcommands.
      if (sub.length === 0 || text.includes('Examples:')) assert.match(text, /Examples:\n {2}\$ strata /, command);
      for (const name of sub) assert.match(await ok([command, name, '--help']), /Examples:\n {2}\$ strata /, `${command} ${name}`);
    }
  });
});
