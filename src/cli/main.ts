/** `strata`: the one command's entry point; everything else is in run.ts so it can also run in-process. */
import { runCli } from './run.ts';

// A reader that stops early (`strata --help | head -1`) wanted no more: exit quietly, as coreutils
// do, instead of crashing on the write that found the pipe closed. Only stdout: the agent's and
// server's logs go to stderr, and a daemon losing those should still fail loudly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, setExitCode: () => undefined });
