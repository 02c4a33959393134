/**
 * The CLI as a function: parses arguments (accepting deployctl's single-dash long flags),
 * runs the subcommand with injected streams, and turns failures into one line and an exit
 * status: 0 ok, 1 error, 2 usage.
 */
import { Command, CommanderError } from 'commander';
import { isClientError } from '../lib/http-client.ts';
import { isStrataError } from '../core/errors.ts';
import { STRATA_VERSION } from '../lib/version.ts';
import { UsageError, UserError, type CliContext } from './context.ts';
import { registerCommands } from './commands/index.ts';

/**
 * Rewrites deployctl's `-name x` and `-name=x` to `--name x` / `--name=x`. Single letters stay
 * short flags (`-v`); nothing after `--` is touched.
 */
export function normalizeArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  let passthrough = false;
  for (const arg of args) {
    if (passthrough || arg === '--') {
      passthrough = true;
      out.push(arg);
      continue;
    }
    out.push(/^-[a-zA-Z][a-zA-Z0-9-]+(=.*)?$/s.test(arg) ? `-${arg}` : arg);
  }
  return out;
}

/**
 * The command a run names: its first argument, unless that is a global option (`--help`,
 * `--version`), in which case none, and every command is needed.
 */
function commandNameOf(args: readonly string[]): string | undefined {
  const first = args[0];
  return first === undefined || first.startsWith('-') ? undefined : first;
}

/**
 * Builds the command tree writing to the context's streams. Given the (normalized) arguments, it
 * loads only the module of the command they name; without them, or for help or an unknown
 * command, every command.
 */
export async function buildProgram(context: CliContext, args?: readonly string[]): Promise<Command> {
  const program = new Command('strata')
    .description('Strata ships layered file trees to fleets of Linux machines and keeps them there.')
    .version(STRATA_VERSION, '--version', 'print the version')
    .enablePositionalOptions()
    .configureOutput({
      writeOut: (text) => context.stdout.write(text),
      writeErr: (text) => context.stderr.write(text),
      // Usage mistakes are one line, like every other error, with a pointer to the help.
      outputError: (text, write) => write(`strata: ${text.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')} (see --help)\n`),
    })
    .exitOverride();
  await registerCommands(program, context, args === undefined ? undefined : commandNameOf(args));
  return program;
}

/** One line describing a failure, and the exit status it deserves. */
export function describeFailure(error: unknown, debug: boolean): { line: string; code: number } {
  if (error instanceof UsageError) return { line: `strata: ${error.message}`, code: 2 };
  if (error instanceof UserError) return { line: error.message, code: 1 };
  if (isClientError(error)) return { line: error.message, code: 1 };
  if (isStrataError(error)) return { line: error.message, code: 1 };
  const detail = debug && error instanceof Error ? `\n${error.stack}` : '';
  return { line: `internal error: ${error instanceof Error ? error.message : String(error)}${detail}`, code: 1 };
}

/** Runs the CLI with `args` (without node and script), returning the exit status. */
export async function runCli(args: readonly string[], context: CliContext): Promise<number> {
  let exitCode = 0;
  const wrapped: CliContext = { ...context, setExitCode: (code) => (exitCode = code) };
  const normalized = normalizeArgs(args);
  const program = await buildProgram(wrapped, normalized);
  try {
    await program.parseAsync(normalized, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      return 2;
    }
    const failure = describeFailure(error, Boolean(context.env['STRATA_DEBUG']));
    context.stderr.write(`${failure.line}\n`);
    return failure.code;
  }
}

