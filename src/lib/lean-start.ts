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
 * replacement finds it cold (the first process loaded next to nothing, and Node keeps a cache per
 * V8 flag hash, which `--expose-gc` changes), strips types, writes the cache and replaces itself a
 * second time.
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

/** The commands that start lean, and the node flags each needs besides small semi-spaces. */
const LEAN_COMMANDS: Readonly<Record<string, readonly string[]>> = {
  agent: ['--expose-gc'], // for src/lib/gc-pacer.ts
  server: [],
};

/**
 * Called by `bin/strata.js` before it loads the CLI: when the arguments run a lean command
 * (`strata agent …`, `strata server …`; not a subcommand such as `agent rollback`, nor `--help`)
 * that lacks its flags or arena limit, replaces the process at once, which saves loading the CLI
 * twice (about 0.1 s of every start). Otherwise returns, and `leanStart` decides later as usual.
 */
export function replaceEarly(): void {
  const command = earlyCommand(process.argv.slice(2));
  if (command !== undefined) replaceForFlags(command, LEAN_COMMANDS[command]!);
}

/** The lean command `args` (the CLI's arguments) run, unless they ask for help or name a subcommand. */
export function earlyCommand(args: readonly string[]): string | undefined {
  const [command, next] = args;
  if (command === undefined || !Object.hasOwn(LEAN_COMMANDS, command)) return undefined;
  if ((next !== undefined && !next.startsWith('-')) || args.slice(1).some((arg) => arg === '--help' || arg === '-h')) return undefined;
  return command;
}

/** The replacement count and arena setting this process started with, read once: reading removes them. */
let started: { replacements: number; arenas: Record<string, string> } | undefined;

/** What a process needs before it may stay: flags missing, arenas to set, and whether it may replace itself at all. */
function leanState(command: string, requiredFlags: readonly string[]) {
  if (started === undefined) {
    const marker = Number(process.env[MARKER] ?? 0);
    // A marker that is not a count (NaN, negative, fractional) stops: never a replacement loop.
    const replacements = Number.isSafeInteger(marker) && marker >= 0 ? marker : MAX_REPLACEMENTS;
    // Removed, so the process's children never see them; a replacement sets them again.
    if (process.env[ARENAS_SET] === '1') delete process.env[ARENAS];
    delete process.env[MARKER];
    delete process.env[ARENAS_SET];
    started = { replacements, arenas: process.env[ARENAS] === undefined ? { [ARENAS]: '2', [ARENAS_SET]: '1' } : {} };
  }
  const { replacements, arenas } = started;
  return {
    replacements,
    arenas,
    mayReplace: process.argv[2] === command && typeof process.execve === 'function' && replacements < MAX_REPLACEMENTS,
    flags: [
      ...(process.execArgv.some((arg) => arg.startsWith('--max-semi-space-size')) ? [] : [SEMI_SPACE_FLAG]),
      ...requiredFlags.filter((flag) => !process.execArgv.includes(flag)),
    ],
  };
}

/** The first replacement: when flags or the arena limit are missing, replaces the process (never returns). */
function replaceForFlags(command: string, requiredFlags: readonly string[]): ReturnType<typeof leanState> {
  const state = leanState(command, requiredFlags);
  if (state.mayReplace && state.replacements === 0 && (state.flags.length > 0 || ARENAS in state.arenas)) {
    replace([...state.flags, ...process.execArgv], state.arenas, state.replacements);
  }
  return state;
}

/**
 * Replaces the process at once when it runs without small semi-spaces, the command's required
 * flags (`requiredFlags`, by default those LEAN_COMMANDS lists) or a malloc arena limit; otherwise
 * runs `load` (the imports the command needs), and replaces the process once more if that had to
 * strip types with the compile cache on. The first replacement loads nothing before it: the
 * replacement loads the modules anyway, and a required flag that changes V8's flag hash leaves
 * the cache they would warm unused.
 */
export async function leanStart(command: string, load: () => Promise<void>, requiredFlags: readonly string[] = (Object.hasOwn(LEAN_COMMANDS, command) ? LEAN_COMMANDS[command] : undefined) ?? []): Promise<void> {
  const { mayReplace, arenas, replacements } = replaceForFlags(command, requiredFlags);
  await load();
  // With its flags and arenas in place, only a cold cache justifies a replacement: it sheds the stripper.
  if (!mayReplace || module.getCompileCacheDir?.() === undefined || !strippedTypes()) return;
  replace(process.execArgv, arenas, replacements);
}

/**
 * Replaces this process (same pid) with node running `flags` and the same arguments; never returns.
 * Writes the compile cache first: execve skips the write Node does at exit, and whatever this
 * process compiled (at least this module, under its flags) would be compiled again at every start.
 */
function replace(flags: readonly string[], env: Record<string, string>, replacements: number): never {
  module.flushCompileCache?.();
  process.execve!(process.execPath, [process.execPath, ...flags, ...process.argv.slice(1)], { ...process.env, ...env, [MARKER]: String(replacements + 1) });
  throw new Error('unreachable: execve returned');
}
