/**
 * Fleet orders end to end: a real server, three real agents (each with its own --config TOML and
 * labels) and a fourth enrolled agent that is stopped, driven by the real CLI — ping, exec (the
 * whitelist, argument patterns and injection seeds, timeouts, output caps), sync with the real
 * rsync (dry run, run, kill, destinations outside the allow-list), logs, the order records, and
 * a viewer token that may read orders but not send them.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { STRATA_VERSION } from '../src/lib/version.ts';
import { CLI, STORE_BACKENDS, runStrata, startServer, type CliResult, type TestServer } from './helpers/strata-server.ts';
import { joinToken, startAgent, waitFor, type TestAgent } from './helpers/strata-agent.ts';
import { processesMentioning } from './helpers/processes.ts';

const RSYNC = '/usr/bin/rsync';

/** One host's entry in an order command's --json output. */
interface HostJson {
  ok: boolean;
  code: string | number;
  message: string;
  content: Record<string, unknown> | null;
  durationMs: number;
}
type OrderJson = Record<string, HostJson>;

let root: string;
let server: TestServer;
const agents: Record<string, TestAgent> = {};

async function strata(args: string[], env: Record<string, string> = server.env): Promise<CliResult> {
  return runStrata(args, env);
}

/**
 * Runs `verb …rest` with --json; returns the exit status and the parsed object keyed by host.
 * --json goes right after the verb: everything after exec's NAME is the command's arguments.
 */
async function order([verb, ...rest]: string[]): Promise<{ code: number; body: OrderJson; stderr: string }> {
  const args = [verb!, '--json', ...rest];
  const result = await strata(args);
  let body: OrderJson;
  try {
    body = JSON.parse(result.stdout) as OrderJson;
  } catch {
    throw new Error(`strata ${args.join(' ')} --json printed no JSON (exit ${result.code}): ${result.stdout}${result.stderr}`);
  }
  return { code: result.code, body, stderr: result.stderr };
}

/** The one host's result of `verb …rest` sent to `host`, asserting the exit status (target flags go before exec's NAME). */
async function one(host: string, [verb, ...rest]: string[], exit: number): Promise<HostJson> {
  const args = [verb!, '--hosts', host, ...rest];
  const { code, body, stderr } = await order(args);
  assert.deepEqual(Object.keys(body), [host], JSON.stringify(body));
  assert.equal(code, exit, `strata ${args.join(' ')}: exit ${code}, ${JSON.stringify(body)} ${stderr}`);
  return body[host]!;
}

async function read(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').catch(() => undefined);
}

/** Relative paths and contents of every file under `dir`. */
async function tree(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    files[path.relative(dir, full)] = await readFile(full, 'latin1');
  }
  return files;
}


/** The `online` flag of every enrolled agent, by name. */
async function onlineByName(): Promise<Record<string, boolean>> {
  const result = await strata(['agents', '--json']);
  if (result.code !== 0) throw new Error(result.stderr);
  const { agents: list } = JSON.parse(result.stdout) as { agents: { name: string; online: boolean }[] };
  return Object.fromEntries(list.map((a) => [a.name, a.online]));
}

const toml = (value: unknown): string => JSON.stringify(value);
const marker = (host: string): string => path.join(root, `marker-${host}.txt`);

/** The agent config of `host`: every host whitelists `record`, `fail`, `nap` and `flood`; db-1 lacks `hello`; web-1 has the sync groups. */
function agentConfig(host: string): string {
  const tool = path.join(root, 'tool.sh');
  const entries: string[] = [];
  if (host !== 'db-1') {
    entries.push(`[exec.hello]\ncommand = ${toml([tool, marker(host), 'both', '{1}'])}\nargs = ${toml(['[A-Za-z0-9 _-]+'])}\n`);
  }
  entries.push(
    `[exec.record]\ncommand = ${toml([tool, marker(host), 'record', '{1}'])}\nargs = ${toml(['[A-Za-z0-9._/-]+'])}\n`,
    // A pattern that lets everything through: the agent still refuses line breaks and `..`.
    `[exec.anything]\ncommand = ${toml([tool, marker(host), 'record', '{1}'])}\nargs = ${toml(['.*'])}\n`,
    `[exec.fail]\ncommand = ${toml([tool, marker(host), 'fail', '{1}'])}\nargs = ${toml(['[0-9]{1,3}'])}\n`,
    `[exec.nap]\ncommand = ${toml(['/usr/bin/sleep', '{1}'])}\nargs = ${toml(['[0-9]+'])}\ntimeout = "1s"\n`,
    `[exec.flood]\ncommand = ${toml(['/usr/bin/seq', '1', '{1}'])}\nargs = ${toml(['[0-9]{1,7}'])}\nmax_output = "1KiB"\n`,
  );
  if (host === 'web-1') {
    const srv = path.join(root, 'srv');
    entries.push(
      `[sync]\nallowed_destinations = ${toml([`${srv}/`])}\nrsync = ${toml(RSYNC)}\n`,
      `[sync.group.www]\nsource = ${toml(`${path.join(root, 'site')}/`)}\ndestination = ${toml(`${srv}/www/`)}\nexclude = [".git/"]\noptions = ["--delete"]\n`,
      `[sync.group.slow]\nsource = ${toml(`${path.join(root, 'big')}/`)}\ndestination = ${toml(`${srv}/slow/`)}\noptions = ["--bwlimit=100"]\n`,
      `[sync.group.outside]\nsource = ${toml(`${path.join(root, 'site')}/`)}\ndestination = ${toml(`${path.join(root, 'outside')}/`)}\n`,
      `[sync.group.symlinked]\nsource = ${toml(`${path.join(root, 'site')}/`)}\ndestination = ${toml(`${srv}/escape/www/`)}\n`,
    );
  }
  return entries.join('\n');
}

// Every case runs once per store backend: the embedded SQLite store and NATS JetStream.
for (const backend of STORE_BACKENDS) describe(`fleet orders end to end: real server, real agents, real CLI (${backend} store)`, () => {
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'strata-orders-e2e-'));
    // The whitelisted script: prints to stdout and stderr apart, appends to the host's marker file.
    const tool = path.join(root, 'tool.sh');
    await writeFile(tool, [
      '#!/bin/sh',
      'marker="$1"; mode="$2"; shift 2',
      'case "$mode" in',
      '  both) printf "out:%s\\n" "$1"; printf "err:%s\\n" "$1" >&2; printf "both:%s\\n" "$1" >> "$marker" ;;',
      '  record) printf "%s\\n" "$1" >> "$marker" ;;',
      '  fail) echo "about to fail"; echo "failing with $1" >&2; exit "$1" ;;',
      'esac',
      '',
    ].join('\n'));
    await chmod(tool, 0o755);
    // Sync material: a source tree, an allowed area with an out-of-date copy, a place outside it.
    const site = path.join(root, 'site');
    const srv = path.join(root, 'srv');
    await mkdir(path.join(site, 'sub'), { recursive: true });
    await mkdir(path.join(site, '.git'), { recursive: true });
    await mkdir(path.join(srv, 'www'), { recursive: true });
    await mkdir(path.join(root, 'outside'), { recursive: true });
    await mkdir(path.join(root, 'big'), { recursive: true });
    await writeFile(path.join(site, 'index.html'), 'new index\n');
    await writeFile(path.join(site, 'same.txt'), 'unchanged\n');
    await writeFile(path.join(site, 'sub', 'page.html'), 'page\n');
    await writeFile(path.join(site, '.git', 'HEAD'), 'ref\n');
    await writeFile(path.join(srv, 'www', 'index.html'), 'old index, longer than the new one\n');
    await writeFile(path.join(srv, 'www', 'stale.html'), 'stale\n');
    await writeFile(path.join(root, 'big', 'blob.bin'), randomBytes(3 * 1024 * 1024));
    await symlink(path.join(root, 'outside'), path.join(srv, 'escape'));
    // rsync -a keeps mtimes; same.txt must look identical on both sides to be left alone.
    await writeFile(path.join(srv, 'www', 'same.txt'), 'unchanged\n');
    const mtime = new Date('2024-01-01T00:00:00Z');
    await utimes(path.join(site, 'same.txt'), mtime, mtime);
    await utimes(path.join(srv, 'www', 'same.txt'), mtime, mtime);

    server = await startServer(path.join(root, 'data'), [], { store: backend });
    const token = await joinToken(server);
    const hosts = [['web-1', 'role=web,region=eu'], ['web-2', 'role=web,region=us'], ['db-1', 'role=db,region=eu'], ['gone', 'role=cache,region=eu']] as const;
    for (const [host, labels] of hosts) {
      const config = path.join(root, `${host}.toml`);
      await writeFile(config, agentConfig(host));
      agents[host] = startAgent({ server, dir: path.join(root, `agent-${host}`), name: host, token, args: ['--labels', labels, '--config', config], env: { LANG: 'C' } });
    }
    await waitFor('four agents online', async () => {
      const online = await onlineByName();
      return hosts.every(([host]) => online[host] === true);
    }, 25_000, 150).catch((error: Error) => {
      throw new Error(`${error.message}\n${Object.entries(agents).map(([n, a]) => `--- ${n}\n${a.logs().slice(-2000)}`).join('\n')}`);
    });
    // The fourth stays enrolled but goes away.
    await agents['gone']!.stop();
    await waitFor('gone offline', async () => (await onlineByName())['gone'] === false, 10_000, 100);
  });

  after(async () => {
    await Promise.all(Object.values(agents).map((a) => a.stop('SIGKILL')));
    await server?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('pings: three answer with their version and round trip, the stopped one is OFFLINE at once; a selector picks only web hosts', async () => {
    const started = Date.now();
    const all = await order(['ping', '--all', '--timeout', '20s']);
    const elapsed = Date.now() - started;
    assert.equal(all.code, 1, 'an offline host makes the order fail');
    assert.deepEqual(Object.keys(all.body), ['db-1', 'gone', 'web-1', 'web-2']);
    for (const host of ['db-1', 'web-1', 'web-2']) {
      const result = all.body[host]!;
      assert.equal(result.ok, true, JSON.stringify(result));
      assert.equal(result.code, 'OK');
      assert.equal(result.content?.['agentVersion'], STRATA_VERSION);
      assert.equal(result.content?.['name'], host);
      assert.equal(typeof result.content?.['rttMs'], 'number');
      assert.ok((result.content!['rttMs'] as number) >= 0);
      assert.equal(typeof result.durationMs, 'number');
    }
    assert.equal(all.body['gone']!.ok, false);
    assert.equal(all.body['gone']!.code, 'OFFLINE');
    assert.ok(elapsed < 8_000, `the offline host is reported without waiting for the 20 s timeout (took ${elapsed} ms)`);

    assert.ok(all.body['gone']!.durationMs < 1000, JSON.stringify(all.body['gone']));

    const [web, us, eu] = await Promise.all([
      order(['ping', '--selector', 'role=web']),
      order(['ping', '--selector', 'role=web,region!=eu']),
      order(['ping', '--selector', 'region=eu', '--timeout', '20s']),
    ]);
    assert.equal(web.code, 0, JSON.stringify(web.body));
    assert.deepEqual(Object.entries(web.body).map(([h, r]) => [h, r.ok, r.code]), [['web-1', true, 'OK'], ['web-2', true, 'OK']]);
    assert.equal(us.code, 0);
    assert.deepEqual(Object.keys(us.body), ['web-2']);
    // A selector that picks the stopped agent fails because of it alone.
    assert.equal(eu.code, 1);
    assert.deepEqual(Object.entries(eu.body).map(([h, r]) => [h, r.code]), [['db-1', 'OK'], ['gone', 'OFFLINE'], ['web-1', 'OK']]);
  });

  it('execs a whitelisted command: stdout and stderr apart, exit statuses, timeouts, the whitelist and the output cap', async () => {
    const [success, failing, timedOut, unknown, wrongCount, flood] = await Promise.all([
      one('web-1', ['exec', 'hello', 'hi there'], 0),
      one('web-1', ['exec', 'fail', '3'], 1),
      one('web-1', ['exec', 'nap', '10'], 1),
      one('web-1', ['exec', 'no-such-command'], 1),
      one('web-1', ['exec', 'hello', 'a', 'b'], 1),
      one('web-2', ['exec', 'flood', '100000'], 0),
    ]);
    assert.equal(success.ok, true, JSON.stringify(success));
    assert.equal(success.code, 0);
    assert.equal(success.content?.['stdout'], 'out:hi there\n');
    assert.equal(success.content?.['stderr'], 'err:hi there\n');
    assert.deepEqual(success.content?.['truncated'], { stdout: false, stderr: false });
    assert.equal(await read(marker('web-1')), 'both:hi there\n', 'the argument arrives as one argv element, spaces and all');

    assert.equal(failing.ok, false);
    assert.equal(failing.code, 3, 'the code is the exit status');
    assert.match(failing.message, /status 3/);
    assert.equal(failing.content?.['stdout'], 'about to fail\n');
    assert.equal(failing.content?.['stderr'], 'failing with 3\n');

    assert.equal(timedOut.code, 'TIMEOUT', JSON.stringify(timedOut));
    assert.ok(timedOut.durationMs >= 1000 && timedOut.durationMs < 5000, `killed after the config's 1 s (${timedOut.durationMs} ms)`);

    assert.equal(unknown.code, 'NOT_WHITELISTED');
    assert.match(unknown.message, /"no-such-command" is not in this agent's config/);
    assert.equal(wrongCount.code, 'BAD_ARGUMENT');
    assert.match(wrongCount.message, /takes 1 argument\(s\), got 2/);

    assert.equal(flood.ok, true, JSON.stringify(flood));
    const stdout = flood.content?.['stdout'] as string;
    assert.deepEqual(flood.content?.['truncated'], { stdout: true, stderr: false });
    assert.ok(stdout.length <= 1024, `at most max_output (${stdout.length})`);
    assert.ok(stdout.endsWith('99999\n100000\n'), 'the tail is kept');
  });

  it('refuses the injection seeds with BAD_ARGUMENT and does not run the command', async () => {
    const seeds = ['x; touch /tmp/pwned', 'x`id`', '$(id)', 'line\nsecond', '../../etc/passwd', 'a/../b', '..'];
    const strict = await Promise.all(seeds.map((seed) => one('web-2', ['exec', 'record', seed], 1)));
    strict.forEach((result, index) => {
      assert.equal(result.ok, false);
      assert.equal(result.code, 'BAD_ARGUMENT', `${JSON.stringify(seeds[index])}: ${JSON.stringify(result)}`);
    });
    assert.match(strict[3]!.message, /control character/);
    assert.match(strict[4]!.message, /"\.\." path segment/);
    // A pattern of `.*` does not open the door to line breaks or `..`: the agent refuses those itself.
    const loose = await Promise.all(['line\nsecond', 'tab\there', '../../etc/passwd', 'x/..'].map((seed) => one('web-2', ['exec', 'anything', seed], 1)));
    for (const result of loose) assert.equal(result.code, 'BAD_ARGUMENT', JSON.stringify(result));
    assert.equal(await read(marker('web-2')), undefined, 'no refused argument reached the command');

    // What a pattern does allow is data, never shell: `$(id)` and `;` arrive verbatim.
    const literal = await one('web-2', ['exec', 'anything', '$(id); `id`'], 0);
    assert.equal(literal.ok, true, JSON.stringify(literal));
    assert.equal(await read(marker('web-2')), '$(id); `id`\n');
  });

  it('reports mixed results across hosts: exit 1, a table, then the failing hosts\' messages', async () => {
    const result = await strata(['exec', '--hosts', 'web-1,web-2,db-1', 'hello', 'mixed']);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.equal(result.stderr, '');
    const lines = result.stdout.split('\n');
    assert.match(lines[0]!, /^HOST\s+OK\s+CODE\s+DURATION\s+MESSAGE$/);
    const rows = lines.slice(1, 4).sort();
    assert.match(rows[0]!, /^db-1\s+FAIL\s+NOT_WHITELISTED\s+\S+\s+exec "hello" is not in this agent's config$/);
    assert.match(rows[1]!, /^web-1\s+OK\s+0\s+\S+\s+exec hello succeeded$/);
    assert.match(rows[2]!, /^web-2\s+OK\s+0\s+\S+\s+exec hello succeeded$/);
    assert.match(result.stdout, /\nfailed:\ndb-1: NOT_WHITELISTED: exec "hello" is not in this agent's config\n/);
    assert.match(result.stdout, /\n2 ok, 1 failed of 3 \(order [0-9a-f]{12}\)\n$/);
    const id = /\(order ([0-9a-f]{12})\)/.exec(result.stdout)![1]!;

    const shown = await strata(['orders', 'show', id, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    const view = JSON.parse(shown.stdout) as { id: string; hosts: string[]; args: Record<string, unknown>; summary: Record<string, number>; results: OrderJson; finishedAt?: string };
    assert.equal(view.id, id);
    assert.deepEqual(view.hosts, ['db-1', 'web-1', 'web-2']);
    assert.deepEqual(view.args, { verb: 'exec', name: 'hello', args: ['mixed'] });
    assert.deepEqual(view.summary, { ok: 2, failed: 1, offline: 0, timedOut: 0 });
    assert.equal(view.results['db-1']!.code, 'NOT_WHITELISTED');
    assert.equal(view.results['web-1']!.code, 0);
    assert.equal((view.results['web-1']!.content as { stdout: string }).stdout, 'out:mixed\n');
    assert.ok(view.finishedAt);
  });

  it('syncs with the real rsync: a dry run lists the changes, a run makes the destination equal', async () => {
    const www = path.join(root, 'srv', 'www');
    const before = await tree(www);
    const dry = await one('web-1', ['sync', 'www', '--dry-run'], 0);
    assert.equal(dry.ok, true, JSON.stringify(dry));
    const plan = dry.content as { new: string[]; changed: string[]; deleted: string[]; files: number; bytes: number; truncated: boolean };
    assert.deepEqual([...plan.new].sort(), ['sub/', 'sub/page.html']);
    assert.deepEqual(plan.changed, ['index.html']);
    assert.deepEqual(plan.deleted, ['stale.html']);
    assert.equal(plan.files, 4);
    assert.equal(plan.bytes, 'new index\n'.length + 'page\n'.length);
    assert.equal(plan.truncated, false);
    assert.match(dry.message, /4 change\(s\), 15 bytes to send/);
    assert.deepEqual(await tree(www), before, 'a dry run changes nothing');

    const run = await one('web-1', ['sync', 'www'], 0);
    assert.equal(run.ok, true, JSON.stringify(run));
    assert.equal(run.content?.['exitCode'], 0);
    assert.equal(run.content?.['filesTransferred'], 2);
    const source = await tree(path.join(root, 'site'));
    delete source[path.join('.git', 'HEAD')];
    assert.deepEqual(await tree(www), source, 'the destination equals the source (without the excluded .git)');

    const again = await one('web-1', ['sync', 'www', '--dry-run'], 0);
    assert.equal((again.content as { files: number }).files, 0, JSON.stringify(again));
  });

  it('refuses destinations outside allowed_destinations, directly or through a symlink, and unknown groups', async () => {
    const [outside, symlinked, unknown] = await Promise.all([
      one('web-1', ['sync', 'outside'], 1),
      one('web-1', ['sync', 'symlinked', '--dry-run'], 1),
      one('web-2', ['sync', 'www', '--dry-run'], 1),
    ]);
    assert.equal(outside.code, 'PATH_NOT_ALLOWED', JSON.stringify(outside));
    assert.match(outside.message, /is not under an allowed destination/);
    assert.equal(symlinked.code, 'PATH_NOT_ALLOWED', JSON.stringify(symlinked));
    assert.match(symlinked.message, /resolves to .*outside/);
    assert.equal(unknown.code, 'UNKNOWN_GROUP');
    assert.deepEqual(await readdir(path.join(root, 'outside')), [], 'nothing was written outside');
  });

  it('stops a slow sync with --kill; the run reports KILLED and its rsync is gone', async () => {
    const env = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...server.env };
    const child = spawn(process.execPath, [CLI, 'sync', '--hosts', 'web-1', 'slow', '--timeout', '50s', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = once(child, 'exit');
    try {
      const bigDir = path.join(root, 'big');
      await waitFor('the slow rsync running', async () => (await processesMentioning(bigDir)).length > 0, 15_000, 50);
      const busy = await one('web-1', ['sync', 'slow'], 1);
      assert.equal(busy.code, 'ALREADY_RUNNING', JSON.stringify(busy));
      const startedKill = Date.now();
      const killed = await one('web-1', ['sync', 'slow', '--kill'], 0);
      assert.equal(killed.ok, true, JSON.stringify(killed));
      assert.match(killed.message, /sync slow stopped \(order [0-9a-f]+\)/);
      const [code] = (await exited) as [number | null];
      assert.ok(Date.now() - startedKill < 15_000, 'the run ends soon after the kill');
      assert.equal(code, 1, stderr);
      const body = JSON.parse(stdout) as OrderJson;
      assert.equal(body['web-1']!.ok, false);
      assert.equal(body['web-1']!.code, 'KILLED', JSON.stringify(body));
      assert.match(body['web-1']!.message, /stopped by a kill order/);
      assert.deepEqual(await processesMentioning(bigDir), [], 'no rsync left running');
      const notRunning = await one('web-1', ['sync', 'slow', '--kill'], 1);
      assert.equal(notRunning.code, 'NOT_RUNNING');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('returns the last lines of the agent log', async () => {
    const logs = await one('web-1', ['logs', '--lines', '5'], 0);
    assert.equal(logs.ok, true, JSON.stringify(logs));
    const lines = logs.content?.['lines'] as string[];
    assert.equal(lines.length, 5);
    for (const line of lines) assert.equal(typeof line, 'string');
    const file = (await read(path.join(root, 'agent-web-1', 'agent.log')))!;
    for (const line of lines) assert.ok(file.includes(line), `${line} is a line of DIR/agent.log`);
    assert.match(lines.join('\n'), /order/, 'the agent logged the orders it ran');
    assert.match(file, /"exec":"hello"/);
    assert.ok(!file.includes('hi there'), 'exec arguments are not written to the agent log, even at debug level');
  });

  it('lists the orders just run and shows one; a viewer may read them but not send orders', async () => {
    const listed = await strata(['orders', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const { orders } = JSON.parse(listed.stdout) as { orders: { id: string; args: Record<string, unknown>; hosts: string[]; summary?: Record<string, number>; createdAt: string }[] };
    const verbs = orders.map((o) => `${o.args['verb']} ${o.args['name'] ?? o.args['group'] ?? ''}`.trim());
    for (const expected of ['ping', 'exec hello', 'exec record', 'exec nap', 'sync www', 'sync slow', 'logs']) assert.ok(verbs.includes(expected), `${expected} in ${verbs.join(', ')}`);
    assert.equal(orders[0]!.args['verb'], 'logs', 'newest first');
    const times = orders.map((o) => o.createdAt);
    assert.deepEqual(times, [...times].sort().reverse());
    const pingAll = orders.find((o) => o.args['verb'] === 'ping' && o.hosts.length === 4)!;
    assert.deepEqual(pingAll.summary, { ok: 3, failed: 1, offline: 1, timedOut: 0 });
    const slow = orders.find((o) => o.args['verb'] === 'sync' && o.args['group'] === 'slow' && o.args['mode'] === 'run' && o.summary?.['failed'] === 1 && o.hosts.length === 1)!;
    const shown = await strata(['orders', 'show', slow.id, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    const results = (JSON.parse(shown.stdout) as { results: OrderJson }).results;
    assert.ok(['KILLED', 'ALREADY_RUNNING'].includes(String(results['web-1']!.code)), JSON.stringify(results));

    const created = await strata(['token', 'create', '--role', 'viewer', '--name', 'e2e-viewer']);
    assert.equal(created.code, 0, created.stderr);
    const viewer = { ...server.env, STRATA_TOKEN: created.stdout.trim() };
    const readable = await strata(['orders'], viewer);
    assert.equal(readable.code, 0, readable.stderr);
    assert.match(readable.stdout, /^ID\s+TIME\s+WHO\s+VERB\s+HOSTS\s+OK\/FAILED\n/);
    const show = await strata(['orders', 'show', pingAll.id, '--json'], viewer);
    assert.equal(show.code, 0, show.stderr);
    assert.equal((JSON.parse(show.stdout) as { results: OrderJson }).results['gone']!.code, 'OFFLINE');

    const countBefore = orders.length;
    const forbidden = await strata(['ping', '--all'], viewer);
    assert.equal(forbidden.code, 1);
    assert.equal(forbidden.stdout, '');
    assert.equal(forbidden.stderr.trim().split('\n').length, 1, forbidden.stderr);
    assert.match(forbidden.stderr, /^role viewer may not do this; it needs deployer\n$/);
    const later = JSON.parse((await strata(['orders', '--json'])).stdout) as { orders: unknown[] };
    assert.equal(later.orders.length, countBefore, 'a refused order is not recorded as an order');
  });
});
