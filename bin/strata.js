#!/usr/bin/env node
// Strata's entry point. Runs the TypeScript sources under Node's type stripping, with Node's
// on-disk compile cache switched on first: once a source file has been stripped and compiled,
// later starts load the cached result and never load the stripper (an 18 MiB WebAssembly module)
// nor keep the sources' stripped copies, which saves about 27 MiB of every agent's memory
// (docs/benchmarks.md). The cache lives in the system's temp directory, keyed by content, so an
// edited source is never served stale; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
// When the `node` on PATH is too old for type stripping (Debian's Node 20, say), re-run under
// the Node 24 the project pins in node_modules.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const [major, minor] = process.versions.node.split('.').map(Number);
if (major > 22 || (major === 22 && minor >= 18)) {
  module.enableCompileCache?.();
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
