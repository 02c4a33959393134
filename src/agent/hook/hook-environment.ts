/**
 * The deploy hook's environment, as deploy-tools defines it: a cleared environment holding the
 * deploy's variables and a short list copied from the agent's own. One deliberate difference:
 * OLDID and OLDROOT are empty on the first deploy (deploy-tools sets OLDROOT to `<dir>/unpacked`).
 */
import type { Configuration } from '../../store/contract.ts';

/** Variables copied from the agent's environment, and only where set. */
export const INHERITED_VARIABLES = ['PATH', 'HOME', 'TMPDIR', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'SHELL'] as const;

/** What the environment is built from. */
export interface HookEnvironmentInput {
  configuration: Configuration;
  /** The previous release's id and root; omitted on the first deploy. */
  oldId?: string;
  oldRoot?: string;
  newRoot: string;
  /** Path of the configuration JSON written by `writeStateFile`. */
  stateFile: string;
  agentEnv: Record<string, string | undefined>;
}

/** The exact environment a deploy hook runs with; nothing else leaks from the agent. */
export function hookEnvironment(input: HookEnvironmentInput): Record<string, string> {
  const { configuration } = input;
  const env: Record<string, string> = {};
  for (const name of INHERITED_VARIABLES) {
    const value = input.agentEnv[name];
    if (value !== undefined) env[name] = value;
  }
  env['OLDID'] = input.oldId ?? '';
  env['OLDROOT'] = input.oldRoot ?? '';
  env['NEWID'] = configuration.id;
  env['NEWROOT'] = input.newRoot;
  env['STATEFILE'] = input.stateFile;
  configuration.layers.forEach((layer, index) => {
    env[`LAYER_${index}_NAME`] = layer.component;
    env[`LAYER_${index}_VERSION`] = layer.version;
  });
  env['STRATA_CONFIG'] = configuration.name;
  env['STRATA_REVISION'] = String(configuration.revision);
  return env;
}
