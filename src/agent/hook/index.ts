/** The deploy hook: its environment, its STATEFILE and running it (see run-hook.ts). */
export { hookEnvironment, INHERITED_VARIABLES, type HookEnvironmentInput } from './hook-environment.ts';
export { runHook, type HookResult, type RunHookOptions } from './run-hook.ts';
export { STATE_FILE_PREFIX, writeStateFile } from './state-file.ts';
