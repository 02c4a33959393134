/** Registers every command, in the order `strata --help` lists them. */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { registerServer } from './server.ts';
import { registerPush } from './push.ts';
import { registerAddver } from './addver.ts';
import { registerAddconf } from './addconf.ts';
import { registerImportImage } from './import-image.ts';
import { registerBumpconf, registerChangeconf } from './changeconf.ts';
import { registerShowconf } from './showconf.ts';
import { registerComponents, registerConfigurations, registerShowcomp } from './showcomp.ts';
import { registerDelcomp, registerDelconf, registerDelver } from './delete.ts';
import { registerHistory, registerRollback } from './history.ts';
import { registerJoinToken, registerToken } from './token.ts';
import { registerAudit } from './audit.ts';
import { registerAgents } from './agents.ts';
import { registerStatus } from './status.ts';
import { registerAssign } from './assign.ts';
import { registerOrderVerbs } from './order-verbs.ts';
import { registerOrders } from './orders.ts';
import { registerGroup } from './group.ts';
import { registerAgent } from './agent.ts';
import { registerQuickstart } from './quickstart.ts';
import { registerTop } from './top.ts';

/** Adds all subcommands to the program. */
export function registerCommands(program: Command, context: CliContext): void {
  registerServer(program, context);
  registerPush(program, context);
  registerAddver(program, context);
  registerAddconf(program, context);
  registerImportImage(program, context);
  registerChangeconf(program, context);
  registerBumpconf(program, context);
  registerShowconf(program, context);
  registerShowcomp(program, context);
  registerComponents(program, context);
  registerConfigurations(program, context);
  registerDelver(program, context);
  registerDelcomp(program, context);
  registerDelconf(program, context);
  registerHistory(program, context);
  registerRollback(program, context);
  registerToken(program, context);
  registerJoinToken(program, context);
  registerAgents(program, context);
  registerStatus(program, context);
  registerTop(program, context);
  registerAssign(program, context);
  registerOrderVerbs(program, context);
  registerOrders(program, context);
  registerGroup(program, context);
  registerAudit(program, context);
  registerAgent(program, context);
  registerQuickstart(program, context);
}
