/**
 * The command modules, in the order `strata --help` lists their commands, loaded on demand: a run
 * of one command imports only that command's module (`strata agent` then carries none of the
 * server, push, import-image or migrate code), while help, `help` and unknown commands load them all.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

/** Adds one module's commands to the program. */
export type RegisterCommands = (program: Command, context: CliContext) => void;

/** One command module: the top-level commands it adds, and how to import its registration. */
export interface CommandModule {
  /** The top-level command names (and aliases) the module registers. */
  readonly names: readonly string[];
  /** Imports the module and returns the function that registers all of its commands, in help order. */
  readonly load: () => Promise<RegisterCommands>;
}

/** Runs several registrations of one module in turn. */
function inOrder(...registers: RegisterCommands[]): RegisterCommands {
  return (program, context) => {
    for (const register of registers) register(program, context);
  };
}

/** Every command module, in `strata --help` order. */
export const COMMAND_MODULES: readonly CommandModule[] = [
  { names: ['server'], load: async () => (await import('./server.ts')).registerServer },
  { names: ['push'], load: async () => (await import('./push.ts')).registerPush },
  { names: ['addver'], load: async () => (await import('./addver.ts')).registerAddver },
  { names: ['addconf'], load: async () => (await import('./addconf.ts')).registerAddconf },
  { names: ['import-image'], load: async () => (await import('./import-image.ts')).registerImportImage },
  {
    names: ['changeconf', 'bumpconf'],
    load: async () => {
      const loaded = await import('./changeconf.ts');
      return inOrder(loaded.registerChangeconf, loaded.registerBumpconf);
    },
  },
  { names: ['showconf'], load: async () => (await import('./showconf.ts')).registerShowconf },
  {
    names: ['showcomp', 'components', 'configurations'],
    load: async () => {
      const loaded = await import('./showcomp.ts');
      return inOrder(loaded.registerShowcomp, loaded.registerComponents, loaded.registerConfigurations);
    },
  },
  {
    names: ['delver', 'delcomp', 'delconf'],
    load: async () => {
      const loaded = await import('./delete.ts');
      return inOrder(loaded.registerDelver, loaded.registerDelcomp, loaded.registerDelconf);
    },
  },
  {
    names: ['history', 'rollback'],
    load: async () => {
      const loaded = await import('./history.ts');
      return inOrder(loaded.registerHistory, loaded.registerRollback);
    },
  },
  {
    names: ['token', 'join-token'],
    load: async () => {
      const loaded = await import('./token.ts');
      return inOrder(loaded.registerToken, loaded.registerJoinToken);
    },
  },
  { names: ['agents'], load: async () => (await import('./agents.ts')).registerAgents },
  { names: ['status'], load: async () => (await import('./status.ts')).registerStatus },
  { names: ['top'], load: async () => (await import('./top.ts')).registerTop },
  { names: ['assign', 'unassign', 'assignments'], load: async () => (await import('./assign.ts')).registerAssign },
  { names: ['ping', 'exec', 'sync', 'logs', 'restart'], load: async () => (await import('./order-verbs.ts')).registerOrderVerbs },
  { names: ['orders'], load: async () => (await import('./orders.ts')).registerOrders },
  { names: ['group'], load: async () => (await import('./group.ts')).registerGroup },
  { names: ['audit'], load: async () => (await import('./audit.ts')).registerAudit },
  { names: ['agent'], load: async () => (await import('./agent.ts')).registerAgent },
  { names: ['quickstart'], load: async () => (await import('./quickstart.ts')).registerQuickstart },
  { names: ['migrate'], load: async () => (await import('./migrate.ts')).registerMigrate },
];

/**
 * Adds subcommands to the program: only the module of `commandName` when it names a command, else
 * (no name, `help`, an unknown name) all of them, so help lists everything and a typo gets its suggestion.
 */
export async function registerCommands(program: Command, context: CliContext, commandName?: string): Promise<void> {
  const one = COMMAND_MODULES.find((entry) => commandName !== undefined && entry.names.includes(commandName));
  const modules = one ? [one] : COMMAND_MODULES;
  const registers = await Promise.all(modules.map((entry) => entry.load()));
  for (const register of registers) register(program, context);
}
