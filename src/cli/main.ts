/** `strata`: the one command's entry point; everything else is in run.ts so it can also run in-process. */
import { runCli } from './run.ts';

process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, setExitCode: () => undefined });
