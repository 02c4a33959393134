/**
 * Lean starts for Strata's long-running processes (`strata server`, `strata agent`): the process
 * replaces itself once (same pid, nothing left behind) so that it runs
 *
 * - with 1 MiB semi-spaces: uploads, downloads and unpacks stream through many short-lived
 *   buffers (TLS records, gunzip output); with V8's default 16 MiB semi-spaces that garbage alone
 *   adds 70+ MiB of RSS, and V8 reads the flag only at start-up;
 * - with every module loaded from Node's compile cache (enabled by `bin/strata.js`): a process
 *   that had to type-strip a source keeps the stripper (an 18 MiB WebAssembly module) and the
 *   sources' stripped copies for its whole life, about 27 MiB. The modules are loaded before the
 *   decision, so the cache is written, and the replacement loads none of that;
 * - with at most two glibc malloc arenas (`MALLOC_ARENA_MAX=2`, unless already set): Node's
 *   worker threads otherwise each get an arena of their own, about 7 MiB of idle RSS for nothing.
 *
 * Both measured in docs/benchmarks.md. Only a process started as `strata <command>` replaces
 * itself, never a caller that runs the CLI in-process (a marker in the environment counts the
 * replacements, removed again at once so the process's own children never see it). Once is
 * enough unless a required flag changes V8's flag hash (`--expose-gc` does): Node keeps a compile
 * cache per flag hash, so the first replacement finds its cache cold, strips types and writes it,
 * and replaces itself a second time — only on the first start after an install or upgrade.
 */
import module from 'node:module';

const SEMI_SPACE_FLAG = '--max-semi-space-size=1';
const MARKER = 'STRATA_LEAN_RESTARTED';
/** At most this many replacements: flags and arenas, then once more for a cache cold under the new flags. */
const MAX_REPLACEMENTS = 2;
const ARENAS = 'MALLOC_ARENA_MAX';
/** Set in the replacement when it also set MALLOC_ARENA_MAX, so that it is removed again. */
const ARENAS_SET = 'STRATA_LEAN_ARENAS';

/** Whether this process had to type-strip a source (the compile cache missed or is off). */
function strippedTypes(): boolean {
  const loaded = (process as unknown as { moduleLoadList?: string[] }).moduleLoadList ?? [];
  return loaded.some((entry) => entry.includes('internal/deps/amaro'));
}

/**
 * Runs `load` (the imports the command needs), then replaces the process when it runs without
 * small semi-spaces, one of `requiredFlags` (node flags the command needs, such as `--expose-gc`)
 * or a malloc arena limit, or had to strip types with the compile cache on.
 */
export async function leanStart(command: string, load: () => Promise<void>, requiredFlags: readonly string[] = []): Promise<void> {
  const replacements = Number(process.env[MARKER] ?? 0);
  if (process.env[ARENAS_SET] === '1') delete process.env[ARENAS];
  delete process.env[MARKER];
  delete process.env[ARENAS_SET];
  await load();
  // Written so that a marker that is not a number (NaN) also stops: never a replacement loop.
  if (process.argv[2] !== command || typeof process.execve !== 'function' || !(replacements < MAX_REPLACEMENTS)) return;
  const needsFlag = !process.execArgv.some((arg) => arg.startsWith('--max-semi-space-size'));
  const missingFlags = requiredFlags.filter((flag) => !process.execArgv.includes(flag));
  const cacheMissed = module.getCompileCacheDir?.() !== undefined && strippedTypes();
  const needsArenas = process.env[ARENAS] === undefined;
  // A replacement has its flags and arenas already; only a cold cache justifies another.
  if (replacements > 0 ? !cacheMissed : !needsFlag && missingFlags.length === 0 && !cacheMissed && !needsArenas) return;
  module.flushCompileCache?.();
  const flags = [...(needsFlag ? [SEMI_SPACE_FLAG] : []), ...missingFlags, ...process.execArgv];
  const arenas = needsArenas ? { [ARENAS]: '2', [ARENAS_SET]: '1' } : {};
  process.execve(process.execPath, [process.execPath, ...flags, ...process.argv.slice(1)], { ...process.env, ...arenas, [MARKER]: String(replacements + 1) });
}
