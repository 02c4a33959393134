/**
 * Agent orders on real processes: `ping`, `exec` of whitelisted commands (argv only, whole-match
 * patterns, injection attempts refused, timeouts that stop the whole process group, output caps),
 * unreadable orders, cancel, the concurrency bound, and the config file's one-line errors.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AgentConfigError, loadAgentConfig, parseAgentConfig } from '../src/agent/agent-config.ts';
import { STRATA_VERSION } from '../src/lib/version.ts';
import { alive, orderHarness } from './helpers/agent-orders.ts';
import { runStrata } from './helpers/strata-server.ts';
import { tempDir } from './helpers/temp-dir.ts';

const CONFIG = `
[exec.echo]
command = ["/bin/echo", "hello", "{1}"]
args = ["^[a-z0-9./-]+$"]

[exec.exit3]
command = ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]

[exec.env]
command = ["/usr/bin/env"]

[exec.forks]
command = ["/bin/sh", "-c", "echo $$; sleep 100 & echo $!; sleep 100"]
timeout = "500ms"

[exec.loud]
command = ["/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\\\0' x; echo; echo tail-end"]
max_output = "1KiB"

[exec.service]
command = ["/bin/echo", "service", "nginx", "{1}"]
args = ["start|stop|reload|status"]

[exec.sleep]
command = ["/bin/sleep", "{1}"]
args = ["[0-9]+"]
`;

describe('ping and exec orders', () => {
  it('answers ping with the version and name', async (t) => {
    const h = await orderHarness(await tempDir(t), CONFIG);
    const result = await h.run({ verb: 'ping' });
    assert.deepEqual({ ok: result.ok, code: result.code, content: result.content }, { ok: true, code: 'OK', content: { agentVersion: STRATA_VERSION, name: 'test-agent' } });
    assert.equal(typeof result.durationMs, 'number');
  });

  it('runs a whitelisted command with its argument as one argv element', async (t) => {
    const h = await orderHarness(await tempDir(t), CONFIG);
    const result = await h.run({ verb: 'exec', name: 'echo', args: ['world'] });
    assert.equal(result.ok, true);
    assert.equal(result.code, 0);
    const content = result.content as { exitCode: number; stdout: string; stderr: string; truncated: { stdout: boolean } };
    assert.equal(content.stdout, 'hello world\n');
    assert.equal(content.exitCode, 0);
    assert.equal(content.truncated.stdout, false);
  });

  it('reports a non-zero exit with stdout and stderr apart', async (t) => {
    const h = await orderHarness(await tempDir(t), CONFIG);
    const result = await h.run({ verb: 'exec', name: 'exit3', args: [] });
    assert.equal(result.ok, false);
    assert.equal(result.code, 3);
    const content = result.content as { stdout: string; stderr: string };
    assert.equal(content.stdout, 'out\n');
    assert.equal(content.stderr, 'err\n');
    assert.match(result.message, /status 3/);
  });

  it('gives commands only the short list of the agent environment (no secrets)', async (t) => {
    const h = await orderHarness(await tempDir(t), CONFIG);
    const result = await h.run({ verb: 'exec', name: 'env', args: [] });
    const stdout = (result.content as { stdout: string }).stdout;
    assert.match(stdout, /^PATH=/m);
    assert.doesNotMatch(stdout, /STRATA_JOIN_TOKEN|secret-token/);
  });

  it('kills the whole process group on timeout', async (t) => {
    const h = await orderHarness(await tempDir(t), CONFIG);
    const result = await h.run({ verb: 'exec', name: 'forks', args: [] });
    assert.equal(result.ok, false);
    assert.equal(result.code, 'TIMEOUT');
    const pids = (result.content as { stdout: string }).stdout.trim().split('\n').map(Number);
    assert.equal(pids.length, 2);
    // The shell and its background sleep are both gone, not only the direct child.
    // (Signals land asynchronously, so allow the kernel a moment.)
    for (let i = 0; i < 40 && pids.some(alive); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} still runs`);
    assert.ok(result.durationMs < 5000);
  });

  it('refuses commands that are not whitelisted', async (t) => {
    const h = await orderHarness(await tempDir(t), CONFIG);
    const result = await h.run({ verb: 'exec', name: 'rm', args: ['-rf', '/'] });
    assert.deepEqual([result.ok, result.code], [false, 'NOT_WHITELISTED']);
    const proto = await h.run({ verb: 'exec', name: '__proto__', args: [] });
    assert.equal(proto.code, 'NOT_WHITELISTED');
  });

  it('refuses injection attempts and wrong argument counts, naming the argument', async (t) => {
    const h = await orderHarness(await tempDir(t), CONFIG);
    const attempts = ['start; id', 'start `id`', 'start$(id)', '$(id)', 'start\nid', 'start\n', 'start\0', 'start|id', '../start', 'START', 'restart', ''];
    for (const value of attempts) {
      const result = await h.run({ verb: 'exec', name: 'service', args: [value] });
      assert.equal(result.code, 'BAD_ARGUMENT', JSON.stringify(value));
      assert.match(result.message, /argument 1/, JSON.stringify(value));
    }
    // A permissive pattern still never lets a newline or a `..` segment through.
    for (const value of ['a\nb', 'a/../../etc', '..', 'x/..']) {
      const result = await h.run({ verb: 'exec', name: 'echo', args: [value] });
      assert.equal(result.code, 'BAD_ARGUMENT', JSON.stringify(value));
    }
    const count = await h.run({ verb: 'exec', name: 'service', args: ['start', 'extra'] });
    assert.equal(count.code, 'BAD_ARGUMENT');
    assert.match(count.message, /takes 1 argument/);
    const good = await h.run({ verb: 'exec', name: 'service', args: ['reload'] });
    assert.equal((good.content as { stdout: string }).stdout, 'service nginx reload\n');
  });

  it('caps each stream, keeping the tail and saying it was truncated', async (t) => {
    const h = await orderHarness(await tempDir(t), CONFIG);
    const result = await h.run({ verb: 'exec', name: 'loud', args: [] });
    const content = result.content as { stdout: string; truncated: { stdout: boolean; stderr: boolean } };
    assert.equal(result.ok, true);
    assert.equal(content.stdout.length, 1024);
    assert.ok(content.stdout.endsWith('tail-end\n'));
    assert.deepEqual(content.truncated, { stdout: true, stderr: false });
  });

  it('stops a command on order-cancel and at the order deadline', async (t) => {
    const h = await orderHarness(await tempDir(t), CONFIG);
    const sent = h.send({ verb: 'exec', name: 'sleep', args: ['30'] }, { id: 'to-cancel' });
    setTimeout(() => h.dispatcher.cancel('to-cancel'), 200);
    const cancelled = await sent.result;
    assert.deepEqual([cancelled.ok, cancelled.code], [false, 'CANCELLED']);
    const late = await h.run({ verb: 'exec', name: 'sleep', args: ['30'] }, { deadlineMs: 300 });
    assert.deepEqual([late.ok, late.code], [false, 'TIMEOUT']);
    assert.ok(late.durationMs < 5000);
  });

  it('answers unreadable orders UNSUPPORTED, exactly once', async (t) => {
    const h = await orderHarness(await tempDir(t), CONFIG);
    for (const args of [{ verb: 'reboot' }, { verb: 'exec', name: 'echo' }, { verb: 'sync', group: 'x', mode: 'rm' }, 'ping', null]) {
      const sent = h.send(args);
      const result = await sent.result;
      assert.deepEqual([result.ok, result.code], [false, 'UNSUPPORTED'], JSON.stringify(args));
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(sent.results.length, 1);
    }
    assert.equal(h.dispatcher.pending, 0);
  });

  it('runs at most maxConcurrent orders at once; the rest wait their turn', async (t) => {
    const h = await orderHarness(await tempDir(t), CONFIG, { maxConcurrent: 2 });
    const started = Date.now();
    const runs = [1, 2, 3].map(() => h.send({ verb: 'exec', name: 'sleep', args: ['1'] }));
    const results = await Promise.all(runs.map((r) => r.result));
    assert.ok(results.every((r) => r.ok));
    assert.ok(Date.now() - started >= 1900, 'the third waited for a slot');
    assert.ok(results.every((r, i) => runs[i]!.results.length === 1));
  });
});

describe('agent config file', () => {
  const cases: [string, string, RegExp][] = [
    ['bad TOML', '[exec.x\n', /^invalid TOML at line 1/],
    ['unknown key', '[exec.x]\ncommand = ["/bin/true"]\nargz = []\n', /^exec\.x: unknown key "argz"$/],
    ['bad duration', '[exec.x]\ncommand = ["/bin/true"]\ntimeout = "soon"\n', /^exec\.x\.timeout: invalid duration/],
    ['bad size', '[exec.x]\ncommand = ["/bin/true"]\nmax_output = "lots"\n', /^exec\.x\.max_output: invalid size/],
    ['bad regex', '[exec.x]\ncommand = ["/bin/echo", "{1}"]\nargs = ["("]\n', /^exec\.x\.args\[0\]: invalid regular expression/],
    ['partial placeholder', '[exec.x]\ncommand = ["/bin/echo", "--name={1}"]\nargs = ["a"]\n', /^exec\.x\.command\[1\]: a placeholder must be a whole argument/],
    ['placeholder without pattern', '[exec.x]\ncommand = ["/bin/echo", "{2}"]\nargs = ["a"]\n', /^exec\.x\.args: 1 patterns but the command has no \{1\}/],
    ['program placeholder', '[exec.x]\ncommand = ["{1}"]\nargs = ["a"]\n', /^exec\.x\.command: the program/],
    ['empty command', '[exec.x]\ncommand = []\n', /^exec\.x\.command: /],
    ['bad exec name', '[exec."a b"]\ncommand = ["/bin/true"]\n', /^exec\."a b": the name contains whitespace/],
    ['relative destination', '[sync.group.w]\nsource = "/src"\ndestination = "srv"\n', /^sync\.group\.w\.destination: must be an absolute path/],
    ['remote-shell source', '[sync.group.w]\nsource = "host:/src"\ndestination = "/srv"\n', /^sync\.group\.w\.source: must be an rsync:\/\/ URL/],
    ['-e option', '[sync.group.w]\nsource = "/src"\ndestination = "/srv"\noptions = ["-e"]\n', /^sync\.group\.w\.options\[0\]: rsync option "-e" is not in the allow-list/],
    ['--rsh option', '[sync.group.w]\nsource = "/src"\ndestination = "/srv"\noptions = ["--delete", "--rsh=ssh"]\n', /^sync\.group\.w\.options\[1\]: .*not in the allow-list/],
    ['--rsync-path option', '[sync.group.w]\nsource = "/src"\ndestination = "/srv"\noptions = ["--rsync-path=sh"]\n', /options\[0\]: .*not in the allow-list/],
    ['split value', '[sync.group.w]\nsource = "/src"\ndestination = "/srv"\noptions = ["--bwlimit", "100"]\n', /options\[0\]: rsync option --bwlimit needs its value in the same element/],
    ['bad value', '[sync.group.w]\nsource = "/src"\ndestination = "/srv"\noptions = ["--bwlimit=1;id"]\n', /options\[0\]: .*invalid value/],
    ['relative allowed destination', '[sync]\nallowed_destinations = ["srv"]\n', /^sync\.allowed_destinations\[0\]: must be an absolute path/],
    ['unknown section', '[jobs]\npath = "x"\n', /^unknown key "jobs"$/],
  ];
  for (const [what, toml, expected] of cases) {
    it(`refuses ${what} with one line naming the key`, () => {
      assert.throws(() => parseAgentConfig(toml), (error: unknown) => {
        assert.ok(error instanceof AgentConfigError);
        assert.doesNotMatch(error.message, /\n/);
        assert.match(error.message, expected);
        return true;
      });
    });
  }

  it('reads the documented example, with defaults', async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'agent.toml');
    await writeFile(file, `[exec.service-nginx]\ncommand = ["/usr/sbin/service", "nginx", "{1}"]\nargs = ["^(start|stop|reload|status)$"]\ntimeout = "30s"\nmax_output = "64KiB"\n\n[sync]\nallowed_destinations = ["/srv/"]\nrsync = "/usr/bin/rsync"\n\n[sync.group.www]\nsource = "rsync://127.0.0.1:8730/www/"\ndestination = "/srv/www/"\ninclude = []\nexclude = [".git/"]\noptions = ["--delete"]\n\n[exec.minimal]\ncommand = ["/bin/true"]\n`);
    const config = await loadAgentConfig(file);
    assert.equal(config.exec.get('service-nginx')!.timeoutMs, 30_000);
    assert.equal(config.exec.get('minimal')!.maxOutputBytes, 64 * 1024);
    assert.equal(config.exec.get('minimal')!.timeoutMs, 30_000);
    assert.deepEqual(config.sync.allowedDestinations, ['/srv']);
    assert.deepEqual(config.sync.groups.get('www')!.exclude, ['.git/']);
    await assert.rejects(loadAgentConfig(path.join(dir, 'missing.toml')), /missing\.toml: cannot read it \(ENOENT\)/);
  });

  it('makes `strata agent --config` exit 2 with one line', async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'agent.toml');
    await writeFile(file, '[exec.x]\ncommand = ["/bin/true"]\ntimeout = "3q"\n');
    const result = await runStrata(['agent', '--dir', path.join(dir, 'agent'), '--config', file]);
    assert.equal(result.code, 2);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(result.stderr, /--config .*agent\.toml: exec\.x\.timeout: invalid duration "3q"/);
  });
});
