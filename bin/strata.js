#!/usr/bin/env node
// Strata's entry point. Runs the TypeScript sources under Node's type stripping, with Node's
// on-disk compile cache switched on first: once a source file has been stripped and compiled,
// later starts load the cached result and never load the stripper (an 18 MiB WebAssembly module)
// nor keep the sources' stripped copies, which saves about 25 MiB of every agent's memory
// (docs/benchmarks.md). Node runs what the cache holds, so the cache must be a directory only
// this user can write: `$STRATA_COMPILE_CACHE`, else `$XDG_CACHE_HOME/strata/compile-cache`, else
// `~/.cache/strata/compile-cache`, created with mode 0700 and used only when it and every
// directory above it belong to this user or root and no one else may write to them, sticky
// directories such as /tmp aside (never a directory another local user made or can replace,
// where they could plant code). Otherwise Strata simply
// runs without the cache. NODE_DISABLE_COMPILE_CACHE=1 turns it off.
// When the `node` on PATH is too old for type stripping (Debian's Node 20, say), re-run under
// the Node 24 the project pins in node_modules.
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compile cache's directory, if one this user alone controls can be had; see above. */
function privateCacheDir() {
  const base = process.env.XDG_CACHE_HOME || (process.env.HOME ? path.join(process.env.HOME, '.cache') : undefined);
  const explicit = process.env.STRATA_COMPILE_CACHE;
  if (!explicit && !base) return undefined;
  const dir = path.resolve(explicit || path.join(base, 'strata', 'compile-cache'));
  const uid = process.getuid?.();
  if (uid === undefined) return undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (let at = dir; ; at = path.dirname(at)) {
      const stat = lstatSync(at);
      // Others may not write to it, unless it is sticky (as /tmp is): then they cannot replace what is ours inside.
      const writableByOthers = (stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0;
      const trusted = stat.isDirectory() && (stat.uid === uid || stat.uid === 0) && !writableByOthers;
      if (!trusted) return undefined;
      if (path.dirname(at) === at) return dir;
    }
  } catch {
    return undefined;
  }
}

const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const [major, minor] = process.versions.node.split('.').map(Number);
if (major > 22 || (major === 22 && minor >= 18)) {
  const cacheDir = process.env.NODE_DISABLE_COMPILE_CACHE ? undefined : privateCacheDir();
  if (cacheDir) module.enableCompileCache?.(cacheDir);
  // `strata agent` and `strata server` restart themselves with the flags they need: before the CLI loads, when they can.
  // The same URL the CLI's own import resolves to: one module instance, which reads the start state once.
  const { replaceEarly } = await import(new URL('../src/lib/lean-start.ts', import.meta.url).href);
  try {
    replaceEarly();
  } catch {
    // The replacement could not start (execve refused): the CLI tries again later and reports why.
  }
  await import(main);
} else {
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(`strata: Node ${process.versions.node} is too old (need >= 22.18); run npm ci to install the pinned Node 24\n`);
    process.exit(2);
  }
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  // Pass signals on, so stopping this process stops Strata rather than orphaning it.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}
