/**
 * Lean starts for Strata's long-running processes (`strata server`, `strata agent`): the process
 * replaces itself once (same pid, nothing left behind) so that it runs
 *
 * - with 1 MiB semi-spaces: uploads, downloads and unpacks stream through many short-lived
 *   buffers (TLS records, gunzip output); with V8's default 16 MiB semi-spaces that garbage alone
 *   adds 70+ MiB of RSS, and V8 reads the flag only at start-up;
 * - with every module loaded from Node's compile cache (enabled by `bin/strata.js`): a process
 *   that had to type-strip a source keeps the stripper (an 18 MiB WebAssembly module) and the
 *   sources' stripped copies for its whole life, about 27 MiB. A process that had to strip writes
 *   the cache and replaces itself, and the replacement loads none of that;
 * - with at most two glibc malloc arenas (`MALLOC_ARENA_MAX=2`, unless already set): Node's
 *   worker threads otherwise each get an arena of their own, about 7 MiB of idle RSS for nothing.
 *
 * Both measured in docs/benchmarks.md. Only a process started as `strata <command>` replaces
 * itself, never a caller that runs the CLI in-process (a marker in the environment counts the
 * replacements, removed again at once so the process's own children never see it). Once is
 * enough when the compile cache is warm. On the first start after an install or upgrade the
 * replacement finds it cold (Node keeps a cache per V8 flag hash, and `--expose-gc` changes it),
 * strips types, writes the cache and replaces itself a second time.
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
 * Replaces the process at once when it runs without small semi-spaces, one of `requiredFlags`
 * (node flags the command needs, such as `--expose-gc`) or a malloc arena limit; otherwise runs
 * `load` (the imports the command needs), and replaces the process once more if that had to strip
 * types with the compile cache on. The first replacement loads nothing before it: the modules it
 * would load would be loaded again by the replacement anyway (about 0.12 s for the agent's), and a
 * required flag that changes V8's flag hash leaves the cache they would warm unused.
 */
export async function leanStart(command: string, load: () => Promise<void>, requiredFlags: readonly string[] = []): Promise<void> {
  const replacements = Number(process.env[MARKER] ?? 0);
  if (process.env[ARENAS_SET] === '1') delete process.env[ARENAS];
  delete process.env[MARKER];
  delete process.env[ARENAS_SET];
  // Written so that a marker that is not a number (NaN) also stops: never a replacement loop.
  const mayReplace = process.argv[2] === command && typeof process.execve === 'function' && replacements < MAX_REPLACEMENTS;
  const needsFlag = !process.execArgv.some((arg) => arg.startsWith('--max-semi-space-size'));
  const missingFlags = requiredFlags.filter((flag) => !process.execArgv.includes(flag));
  // Unset here also in a replacement whose arenas this module set: removed above, for the children.
  const arenas: Record<string, string> = process.env[ARENAS] === undefined ? { [ARENAS]: '2', [ARENAS_SET]: '1' } : {};
  if (mayReplace && replacements === 0 && (needsFlag || missingFlags.length > 0 || ARENAS in arenas)) {
    const flags = [...(needsFlag ? [SEMI_SPACE_FLAG] : []), ...missingFlags, ...process.execArgv];
    replace(flags, arenas, replacements);
  }
  await load();
  // With its flags and arenas in place, only a cold cache justifies a replacement: it sheds the stripper.
  if (!mayReplace || module.getCompileCacheDir?.() === undefined || !strippedTypes()) return;
  module.flushCompileCache?.();
  replace(process.execArgv, arenas, replacements);
}

/** Replaces this process (same pid) with node running `flags` and the same arguments; never returns. */
function replace(flags: readonly string[], env: Record<string, string>, replacements: number): never {
  process.execve!(process.execPath, [process.execPath, ...flags, ...process.argv.slice(1)], { ...process.env, ...env, [MARKER]: String(replacements + 1) });
  throw new Error('unreachable: execve returned');
}
