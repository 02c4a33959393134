/**
 * The lean start of long-running commands (src/lib/lean-start.ts): a real node process that
 * type-strips its sources replaces itself once, keeping its pid, and the replacement runs with
 * small semi-spaces, a malloc arena limit and every module from the compile cache, while its own
 * environment (what its children inherit) carries none of the restart's markers.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CLI, ROOT } from './helpers/strata-server.ts';
import { tempDir } from './helpers/temp-dir.ts';

interface Report {
  pid: number;
  stripped: boolean;
  gc: string;
  execArgv: string[];
  env: Record<string, string | undefined>;
  initialEnviron: string[];
}

/** Writes a script that enables the compile cache, runs leanStart, and prints what the process looks like afterwards. */
function script(dir: string): string {
  const file = path.join(dir, 'lean.mjs');
  const leanStart = pathToFileURL(path.join(ROOT, 'src/lib/lean-start.ts')).href;
  const someSource = pathToFileURL(path.join(ROOT, 'src/protocol/duration.ts')).href;
  writeFileSync(file, `
import module from 'node:module';
import { appendFileSync, readFileSync } from 'node:fs';
module.enableCompileCache(${JSON.stringify(path.join(dir, 'cache'))});
const { leanStart, replaceEarly } = await import(${JSON.stringify(leanStart)});
// As bin/strata.js does: replace before "the CLI" loads (logged), when told to.
if (process.env.LEAN_EARLY === '1') replaceEarly();
appendFileSync(${JSON.stringify(path.join(dir, 'cli.log'))}, 'cli\\n');
await leanStart(process.env.LEAN_COMMAND ?? 'serve', async () => {
  appendFileSync(${JSON.stringify(path.join(dir, 'loads.log'))}, 'load\\n');
  await import(${JSON.stringify(someSource)});
}, JSON.parse(process.env.LEAN_FLAGS ?? '[]'));
process.stdout.write(JSON.stringify({
  pid: process.pid,
  stripped: process.moduleLoadList.some((entry) => entry.includes('internal/deps/amaro')),
  gc: typeof globalThis.gc,
  execArgv: process.execArgv,
  env: { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX, STRATA_LEAN_RESTARTED: process.env.STRATA_LEAN_RESTARTED, STRATA_LEAN_ARENAS: process.env.STRATA_LEAN_ARENAS },
  initialEnviron: readFileSync('/proc/self/environ', 'utf8').split('\\0').filter((line) => /^(MALLOC_ARENA_MAX|STRATA_LEAN)/.test(line)),
}) + '\\n');
`);
  return file;
}

/** How many times a process ran the command's imports (or, with `log` 'cli', got as far as the CLI) so far. */
function loads(dir: string, log = 'loads'): number {
  const file = path.join(dir, `${log}.log`);
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

function run(file: string, args: string[], env: Record<string, string> = {}): Report[] {
  const output = execFileSync(process.execPath, [file, ...args], { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '', ...env } });
  return output.trim().split('\n').map((line) => JSON.parse(line) as Report);
}

describe('lean start', () => {
  it('replaces before the CLI loads only for a lean command itself, not its subcommands or help', async () => {
    const { earlyCommand } = await import('../src/lib/lean-start.ts');
    assert.equal(earlyCommand(['agent', '--dir', '/x', '--once']), 'agent');
    assert.equal(earlyCommand(['agent']), 'agent');
    assert.equal(earlyCommand(['server', '--data', '/x']), 'server');
    assert.equal(earlyCommand(['agent', 'rollback', '--dir', '/x']), undefined, 'a subcommand');
    assert.equal(earlyCommand(['agent', '--help']), undefined);
    assert.equal(earlyCommand(['server', '-h']), undefined);
    assert.equal(earlyCommand(['agents']), undefined);
    assert.equal(earlyCommand(['--log-level', 'debug', 'agent']), undefined, 'options before the command: no lean start at all');
    assert.equal(earlyCommand([]), undefined);
    assert.equal(earlyCommand(['constructor']), undefined, 'only the table\'s own keys');
  });

  it('replaces a lean command before the CLI loads, so the CLI loads once per start with a warm cache', async (t) => {
    const dir = await tempDir(t, 'strata-lean-');
    const file = script(dir);
    const env = { LEAN_EARLY: '1', LEAN_COMMAND: 'server', LEAN_FLAGS: '[]' };
    const [cold] = run(file, ['server'], env) as [Report];
    assert.ok(cold.execArgv.includes('--max-semi-space-size=1'), `execArgv ${cold.execArgv.join(' ')}`);
    assert.equal(loads(dir, 'cli'), 2, 'cold cache: the first process stopped before the CLI; both replacements got there');
    const [warm] = run(file, ['server'], env) as [Report];
    assert.equal(warm.stripped, false);
    assert.ok(warm.initialEnviron.includes('STRATA_LEAN_RESTARTED=1'), warm.initialEnviron.join(' '));
    assert.equal(loads(dir, 'cli'), 3, 'warm cache: only the replacement loaded the CLI');
    assert.equal(loads(dir), 3);
  });

  it('runs `strata agent` through the early replacement: its usage errors still come out once, with exit 2', async (t) => {
    const home = await tempDir(t, 'strata-lean-home-');
    const result = spawnSync(process.execPath, [CLI, 'agent', '--once', '--dir', path.join(home, 'agent'), '--keep', '0'], { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '', HOME: home } });
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stderr, 'strata: --keep must be a whole number of at least 1\n');
  });

  it('takes a marker that is not a count as the end of replacements', async (t) => {
    const dir = await tempDir(t, 'strata-lean-');
    const file = script(dir);
    for (const marker of ['-5', '1.5', 'x', '-Infinity']) {
      const [report] = run(file, ['serve'], { STRATA_LEAN_RESTARTED: marker }) as [Report];
      assert.deepEqual(report.execArgv, [], `marker ${marker}: not replaced`);
    }
  });

  it('replaces a process that stripped types with one that loads from the compile cache, small semi-spaces and two arenas', async (t) => {
    const dir = await tempDir(t, 'strata-lean-');
    const file = script(dir);
    const reports = run(file, ['serve']);
    assert.equal(reports.length, 1, 'only the last replacement gets to print');
    const [report] = reports as [Report];
    assert.equal(report.stripped, false, 'the replacement loaded every module from the compile cache');
    assert.ok(report.execArgv.includes('--max-semi-space-size=1'), `execArgv ${report.execArgv.join(' ')}`);
    // Cold cache: the first replacement strips, writes the cache and replaces itself again.
    assert.deepEqual(report.initialEnviron.sort(), ['MALLOC_ARENA_MAX=2', 'STRATA_LEAN_ARENAS=1', 'STRATA_LEAN_RESTARTED=2']);
    assert.deepEqual(report.env, {}, 'children inherit none of it');
    assert.equal(loads(dir), 2, 'the first process replaced itself before loading anything');

    const [warm] = run(file, ['serve']) as [Report];
    assert.equal(warm.stripped, false);
    assert.deepEqual(warm.initialEnviron.sort(), ['MALLOC_ARENA_MAX=2', 'STRATA_LEAN_ARENAS=1', 'STRATA_LEAN_RESTARTED=1']);
    assert.equal(loads(dir), 3, 'with a warm cache only the replacement loads the modules');
  });

  it('replaces itself a second time when a required flag finds the compile cache cold, and once when it is warm', async (t) => {
    const dir = await tempDir(t, 'strata-lean-');
    const file = script(dir);
    const env = { LEAN_FLAGS: JSON.stringify(['--expose-gc']) };
    const [cold] = run(file, ['serve'], env) as [Report];
    assert.equal(cold.stripped, false, 'the second replacement loaded every module from the cache its flags use');
    assert.equal(cold.gc, 'function', 'the required flag is in effect');
    assert.ok(cold.execArgv.includes('--expose-gc') && cold.execArgv.includes('--max-semi-space-size=1'), `execArgv ${cold.execArgv.join(' ')}`);
    assert.deepEqual(cold.initialEnviron.sort(), ['MALLOC_ARENA_MAX=2', 'STRATA_LEAN_ARENAS=1', 'STRATA_LEAN_RESTARTED=2']);
    assert.deepEqual(cold.env, {}, 'children inherit none of it');
    assert.equal(loads(dir), 2, 'the replacements loaded the modules, the first process did not');

    const [warm] = run(file, ['serve'], env) as [Report];
    assert.equal(warm.stripped, false);
    assert.equal(warm.gc, 'function');
    assert.ok(warm.initialEnviron.includes('STRATA_LEAN_RESTARTED=1'), `one replacement is enough with a warm cache: ${warm.initialEnviron.join(' ')}`);
    assert.equal(warm.execArgv.filter((flag) => flag === '--expose-gc').length, 1, 'a flag is added once');
    assert.equal(loads(dir), 3, 'with a warm cache only the replacement loads the modules');
  });

  it('keeps an arena limit the operator set, and leaves other commands alone', async (t) => {
    const dir = await tempDir(t, 'strata-lean-');
    const file = script(dir);
    const [other] = run(file, ['something-else']) as [Report];
    assert.equal(other.stripped, true, 'a short-lived command does not restart, even with a cold cache');
    assert.deepEqual(other.execArgv, []);
    assert.deepEqual(other.initialEnviron, []);
    const [kept] = run(file, ['serve'], { MALLOC_ARENA_MAX: '4' }) as [Report];
    assert.equal(kept.env.MALLOC_ARENA_MAX, '4');
    assert.ok(kept.execArgv.includes('--max-semi-space-size=1'));
  });

  it('keeps the compile cache in a directory only this user controls, and runs without one elsewhere', async (t) => {
    const home = await tempDir(t, 'strata-lean-home-');
    chmodSync(home, 0o700);
    execFileSync(process.execPath, [CLI, '--version'], { env: { PATH: process.env['PATH'] ?? '', HOME: home }, timeout: 30_000 });
    const cache = path.join(home, '.cache', 'strata', 'compile-cache');
    assert.equal(statSync(cache).mode & 0o777, 0o700);
    assert.ok(readdirSync(cache).length > 0, 'the cache was written');

    // A directory others may write to (as the shared temp directory is) is never used: Node runs what the cache holds.
    const shared = await tempDir(t, 'strata-lean-shared-');
    const planted = path.join(shared, 'cache');
    mkdirSync(planted);
    chmodSync(planted, 0o777);
    execFileSync(process.execPath, [CLI, '--version'], { env: { PATH: process.env['PATH'] ?? '', HOME: home, STRATA_COMPILE_CACHE: planted }, timeout: 30_000 });
    assert.deepEqual(readdirSync(planted), [], 'nothing was read from or written to a world-writable cache');

    // Nor one another user made, however private (the attack: pre-create the cache as someone else).
    if (process.getuid?.() === 0) {
      const foreign = path.join(shared, 'foreign');
      mkdirSync(foreign, { mode: 0o700 });
      chownSync(foreign, 65534, 65534);
      execFileSync(process.execPath, [CLI, '--version'], { env: { PATH: process.env['PATH'] ?? '', HOME: home, STRATA_COMPILE_CACHE: foreign }, timeout: 30_000 });
      assert.deepEqual(readdirSync(foreign), [], 'a cache directory owned by another user is not used');
    }
  });
});
