/**
 * deploy-tools' console commands over Strata's registry: the same flags, validation lines,
 * outputs (tabwriter layout) and exit statuses as deploy-registry, running the same audited
 * operations as the HTTP API (`src/core/registry.ts`). A command gets the session's input
 * stream too, for commands that read a payload (the seam for `import-image`).
 */
import type { Readable } from 'node:stream';
import { isStrataError } from '../../core/errors.ts';
import type { Registry } from '../../core/registry.ts';
import { renderShowcomp, renderShowconf } from '../../core/deploy-tools-text.ts';
import { ConsoleUsageError, layersOf, parseFlags, type FlagSpec, type FlagValues } from './args.ts';
import { importImageCommand } from './import-image.ts';

/** Where a command writes, and what it may read. */
export interface ConsoleIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** The exec channel's input; absent in the interactive console, where input is the command line. */
  stdin?: Readable;
}

/** Who runs the command and against what. */
export interface ConsoleContext {
  registry: Registry;
  /** How the audit log names the caller: `ssh:<key fingerprint>(<key comment>)`. */
  actor: string;
  /** The server's upload limit, which also bounds each blob a command stores. */
  maxUploadBytes: number;
}

/** One console command: its flags, the deploy-tools checks on them, and what it does. */
export interface ConsoleCommand {
  flags: FlagSpec[];
  /** deploy-tools' argument checks; returns the error line, or undefined when the flags are fine. */
  check?: (values: FlagValues) => string | undefined;
  run(values: FlagValues, context: ConsoleContext, io: ConsoleIo): Promise<void>;
}

/** deploy-tools' `help` text: what every command does. */
export const HELP_TEXT = `addver          add new component version from previously uploaded file
addconf         add new configuration from existing component versions
bumpconf        update single layer of configuration to most recent uploaded version
changeconf      update single layer of configuration to specific version
showconf        show configuration
showcomp        show component versions
components      list all known components
configurations  list all known configurations
delver          delete component version
delcomp         delete all component versions
delconf         delete configuration
import-image    import docker save output read from the session's input (Strata)

use -h flag to get more help on a specific command
`;

/** The names the "Unknown command" line lists, in deploy-tools' order. */
const KNOWN_COMMANDS = ['help', 'addver', 'addconf', 'changeconf', 'showconf', 'components', 'configurations', 'showcomp', 'delver', 'delcomp', 'delconf'];

const name = (usage: string): FlagSpec => ({ name: 'name', kind: 'string', usage });
const str = (values: FlagValues, key: string): string => (values[key] as string | undefined) ?? '';

/** deploy-tools' checks shared by several commands. */
function noColon(value: string): string | undefined {
  return value.includes(':') ? 'name cannot contain : symbol' : undefined;
}
function noSlash(value: string): string | undefined {
  return value.includes('/') ? 'name cannot contain / symbol' : undefined;
}

const COMMANDS: Record<string, ConsoleCommand> = {
  addver: {
    flags: [name('component name'), { name: 'version', kind: 'string', usage: 'unique version id' }, { name: 'hash', kind: 'string', usage: 'sha256 content hash in hex representation (64 chars)' }],
    check: (v) => {
      if (!str(v, 'name') || !str(v, 'version') || !str(v, 'hash')) return 'name, version and hash should all be set';
      return noColon(str(v, 'name')) ?? (str(v, 'hash').length !== 64 ? 'hash should be a hex representation of content sha256 sum, 64 chars long' : undefined);
    },
    async run(v, { registry, actor }) {
      await registry.addVersion(actor, { component: str(v, 'name'), version: str(v, 'version'), blob: str(v, 'hash').toLowerCase() });
    },
  },
  addconf: {
    flags: [name('configuration name'), { name: 'layer', kind: 'list', usage: 'layer in component:version format; can be set multiple times' }, { name: 'force', kind: 'bool', usage: 'accepted for Strata users; the console replaces an existing configuration anyway' }],
    check: (v) => {
      if (!str(v, 'name')) return 'name should be set';
      if (!(v['layer'] as string[] | undefined)?.length) return 'configuration should have at least one layer';
      return noSlash(str(v, 'name'));
    },
    async run(v, { registry, actor }) {
      // deploy-tools' addconf creates or replaces (deploy-from-docker relies on it); the old layers stay in the history.
      await registry.putConfiguration(actor, { name: str(v, 'name'), layers: layersOf(v), force: true });
    },
  },
  changeconf: {
    flags: [name('configuration name'), { name: 'component', kind: 'string', usage: 'component name to update' }, { name: 'version', kind: 'string', usage: 'new version of selected component' }],
    check: (v) => (!str(v, 'name') || !str(v, 'component') || !str(v, 'version') ? 'name, component and version should all be set' : noSlash(str(v, 'name'))),
    async run(v, { registry, actor }) {
      await registry.changeLayer(actor, { name: str(v, 'name'), component: str(v, 'component'), version: str(v, 'version') });
    },
  },
  bumpconf: {
    flags: [name('configuration name'), { name: 'component', kind: 'string', usage: 'component name to update' }],
    check: (v) => (!str(v, 'name') || !str(v, 'component') ? 'both name and component should be set' : noSlash(str(v, 'name'))),
    async run(v, { registry, actor }, io) {
      const before = (await registry.configuration(str(v, 'name'))).layers.find((l) => l.component === str(v, 'component'));
      const result = await registry.bumpLayer(actor, { name: str(v, 'name'), component: str(v, 'component') });
      if (!result.changed || !before) return;
      io.stdout.write(`to roll back run:\n\tchangeconf -name=${JSON.stringify(str(v, 'name'))} -component=${JSON.stringify(before.component)} -version=${JSON.stringify(before.version)}\n`);
    },
  },
  showconf: {
    flags: [name('configuration name'), { name: 'v', kind: 'bool', usage: 'show extra details' }],
    check: (v) => (!str(v, 'name') ? 'name should be set' : noSlash(str(v, 'name'))),
    async run(v, { registry }, io) {
      io.stdout.write(renderShowconf(await registry.configuration(str(v, 'name')), v['v'] === true));
    },
  },
  showcomp: {
    flags: [name('component name')],
    check: (v) => (!str(v, 'name') ? 'name should be set' : noColon(str(v, 'name'))),
    async run(v, { registry }, io) {
      io.stdout.write(renderShowcomp(await registry.store.listVersions(str(v, 'name'))));
    },
  },
  components: {
    flags: [],
    async run(_v, { registry }, io) {
      for (const component of await registry.store.listComponents()) io.stdout.write(`${component.name}\n`);
    },
  },
  configurations: {
    flags: [],
    async run(_v, { registry }, io) {
      for (const configuration of await registry.store.listConfigurations()) io.stdout.write(`${configuration.name}\n`);
    },
  },
  delver: {
    flags: [name('component name'), { name: 'version', kind: 'string', usage: 'unique version id' }],
    check: (v) => (!str(v, 'name') || !str(v, 'version') ? 'both name and version should be set' : noColon(str(v, 'name'))),
    async run(v, { registry, actor }) {
      await registry.deleteVersion(actor, { component: str(v, 'name'), version: str(v, 'version') });
    },
  },
  delcomp: {
    flags: [name('component name')],
    check: (v) => (!str(v, 'name') ? 'name should be set' : undefined),
    async run(v, { registry, actor }) {
      await registry.deleteComponent(actor, { component: str(v, 'name') });
    },
  },
  delconf: {
    flags: [name('configuration name'), { name: 'force', kind: 'bool', usage: 'remove configuration for real' }],
    check: (v) => (!str(v, 'name') ? 'name should be set' : noSlash(str(v, 'name'))),
    async run(v, { registry, actor }) {
      await registry.deleteConfiguration(actor, { name: str(v, 'name'), force: v['force'] === true });
    },
  },
  'import-image': importImageCommand,
};

/** The line(s) an error shows in the console; undefined for errors that are not the user's. */
function consoleMessage(error: unknown): string | undefined {
  if (error instanceof ConsoleUsageError) return error.message;
  if (isStrataError(error)) return error.message;
  return undefined;
}

/**
 * Runs one console command (`args[0]` is its name) and returns its exit status: 0 on success,
 * 1 with the error on stderr otherwise. Errors that are not the user's are rethrown for the
 * caller to log.
 */
export async function runConsoleCommand(args: readonly string[], context: ConsoleContext, io: ConsoleIo): Promise<number> {
  if (args.length === 0) {
    io.stderr.write('nothing to do\n');
    return 1;
  }
  const [commandName, ...rest] = args as [string, ...string[]];
  if (commandName === 'help') {
    io.stdout.write(HELP_TEXT.trimEnd() + '\n');
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, commandName) ? COMMANDS[commandName] : undefined;
  if (!command) {
    io.stderr.write(`Unknown command, supported commands are:\n${KNOWN_COMMANDS.join(', ')}\n`);
    return 1;
  }
  try {
    const values = parseFlags(commandName, command.flags, rest);
    const problem = command.check?.(values);
    if (problem) throw new ConsoleUsageError(problem);
    await command.run(values, context, io);
    return 0;
  } catch (error) {
    const message = consoleMessage(error);
    if (message === undefined) throw error;
    io.stderr.write(`${message}\n`);
    return 1;
  }
}
