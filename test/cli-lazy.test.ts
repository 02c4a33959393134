/**
 * The CLI loads only the module of the command it runs: the lazily built program has each command
 * exactly as the full one does (the table in commands/index.ts cannot drift from the modules), and
 * a real `strata agent --help` imports none of the server, push, import-image or migrate modules.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/run.ts';
import { COMMAND_MODULES } from '../src/cli/commands/index.ts';
import type { CliContext } from '../src/cli/context.ts';
import { ROOT, runStrata } from './helpers/strata-server.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** A context whose output goes nowhere; building the program never writes. */
function quietContext(): CliContext {
  return { stdout: new PassThrough(), stderr: new PassThrough(), env: {}, setExitCode: () => undefined };
}

/** A command's name and aliases. */
function namesOf(command: Command): string[] {
  return [command.name(), ...command.aliases()];
}

/** What must not differ between a lazily and a fully built command: names, long flags, subcommands, help. */
interface Shape {
  names: string[];
  flags: (string | undefined)[];
  help: string;
  subcommands: Shape[];
}

function shapeOf(command: Command): Shape {
  return {
    names: namesOf(command),
    flags: command.options.map((option) => option.long),
    help: command.helpInformation(),
    subcommands: command.commands.map(shapeOf),
  };
}

describe('lazily loaded commands', () => {
  it('the table names every top-level command and alias, in help order', async () => {
    const full = await buildProgram(quietContext());
    assert.deepEqual(COMMAND_MODULES.flatMap((entry) => entry.names), full.commands.flatMap(namesOf));
  });

  it('a program built for one command has that command exactly as the full program does, and not every other', async () => {
    const full = await buildProgram(quietContext());
    const names = full.commands.flatMap(namesOf);
    assert.ok(names.length >= 30, `expected every command, got ${names.join(' ')}`);
    for (const name of names) {
      const lazy = await buildProgram(quietContext(), [name, '--help']);
      assert.ok(lazy.commands.some((command) => namesOf(command).includes(name)), `strata ${name}: command missing`);
      assert.ok(lazy.commands.length < full.commands.length, `strata ${name} loaded every command`);
      for (const command of lazy.commands) {
        const same = full.commands.find((candidate) => candidate.name() === command.name());
        assert.ok(same, `strata ${name} registered ${command.name()}, which the full program lacks`);
        assert.deepEqual(shapeOf(command), shapeOf(same), `strata ${command.name()} (loaded for ${name})`);
      }
    }
  });

  it('help, `help` and unknown commands load every command', async () => {
    const full = await buildProgram(quietContext());
    for (const args of [['--help'], ['-h'], ['--version'], ['help', 'agent'], ['nosuch'], []]) {
      const program = await buildProgram(quietContext(), args);
      assert.deepEqual(program.commands.map((command) => command.name()), full.commands.map((command) => command.name()), args.join(' '));
    }
  });

  it('a real `strata agent --help` imports none of the other big command modules; `strata --help` imports them all', async (t) => {
    const dir = await tempDir(t, 'strata-lazy-');
    const preload = path.join(dir, 'record-loads.mjs');
    // Node's synchronous module hooks see every resolution, static and dynamic; the list is written at exit.
    await writeFile(preload, `
import module from 'node:module';
import { writeFileSync } from 'node:fs';
const loaded = new Set();
module.registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); loaded.add(result.url); return result; } });
process.on('exit', () => writeFileSync(process.env.STRATA_TEST_LOADED, [...loaded].join('\\n')));
`);
    const commandsDir = pathToFileURL(path.join(ROOT, 'src/cli/commands/')).href;
    const loadedBy = async (args: string[]): Promise<string[]> => {
      const record = path.join(dir, `${args.join('_') || 'none'}.txt`);
      const result = await runStrata(args, { NODE_OPTIONS: `--import=${pathToFileURL(preload).href}`, STRATA_TEST_LOADED: record });
      assert.equal(result.code, 0, `strata ${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stdout, /^Usage: strata/);
      const urls = (await readFile(record, 'utf8')).split('\n');
      return urls.filter((url) => url.startsWith(commandsDir)).map((url) => path.basename(fileURLToPath(url)));
    };
    const heavy = ['server.ts', 'push.ts', 'import-image.ts', 'migrate.ts'];

    const agent = await loadedBy(['agent', '--help']);
    assert.ok(agent.includes('agent.ts'), `agent.ts among ${agent.join(' ')}`);
    for (const file of heavy) assert.ok(!agent.includes(file), `strata agent --help loaded ${file}`);

    const all = await loadedBy(['--help']);
    for (const file of [...heavy, 'agent.ts']) assert.ok(all.includes(file), `strata --help did not load ${file}: ${all.join(' ')}`);
  });
});
