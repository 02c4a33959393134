/** Plumbing shared by the commands: connecting with the global flags, examples in help, layer parsing. */
import type { Command } from 'commander';
import { connect, type Api, type ConnectionOptions } from '../api.ts';
import { UsageError, type CliContext } from '../context.ts';
import { parseLayerRef, type LayerRef } from '../../protocol/names.ts';

/** Global flags as commander hands them to an action. */
export type GlobalOptions = ConnectionOptions & { json?: boolean };

/** Adds the connection flags and --json to a command that talks to a server. */
export function remoteCommand(command: Command): Command {
  return command
    .option('--server <url>', 'server URL (env STRATA_SERVER)')
    .option('--token <token>', 'API token (env STRATA_TOKEN)')
    .option('--fingerprint <sha256>', "pin the server CA's SHA-256 fingerprint (env STRATA_FINGERPRINT)")
    .option('--ca <file>', 'trust this CA certificate file (env STRATA_CA)')
    .option('--json', 'print machine-readable JSON');
}

/** Runs `run` with an API client built from the global flags, closing it afterwards. */
export async function withApi<T>(command: Command, context: CliContext, run: (api: Api, options: GlobalOptions) => Promise<T>): Promise<T> {
  const options = command.optsWithGlobals<GlobalOptions>();
  const api = connect(context, options);
  try {
    return await run(api, options);
  } finally {
    api.close();
  }
}

/** Adds an "Examples" section to a command's help. */
export function examples(command: Command, lines: string[]): Command {
  return command.addHelpText('after', `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`);
}

/** Parses `--layer component:version` values, refusing malformed ones as usage errors. */
export function parseLayers(values: readonly string[]): LayerRef[] {
  return values.map((value) => {
    try {
      return parseLayerRef(value);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  });
}

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--name` values reach the server inside URL paths, so encode them. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

/** An RFC 3339 time to the second, as deploy-tools prints it. */
export { secondsTime } from '../../core/deploy-tools-text.ts';
