/**
 * What the agent's end-to-end files share: a temp root, a real server in it with a join token,
 * the CLI calls they make against it, and the agents they start, all torn down together. Created
 * inside a `describe`, it starts in that block's `before` and is removed in its `after`.
 */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runStrata, startServer, type StoreBackend, type TestServer } from './strata-server.ts';
import { agentRecord, joinToken, startAgent, waitFor, type ReportedConfiguration, type TestAgent } from './strata-agent.ts';

/** How to start the fixture's server. */
export interface AgentFixtureOptions {
  /** The temp root's name prefix, so a directory left behind says which file made it. */
  prefix: string;
  /** The server's store backend; SQLite by default. */
  store?: StoreBackend;
  /** More `strata server` arguments. */
  serverArgs?: string[];
}

/** A configuration as `strata showconf --json` prints it. */
export interface ShownConfiguration {
  id: string;
  revision: number;
  layers: { component: string; blob: string; size: number }[];
}

/** The shared state and calls; `root`, `server` and `token` exist once the `before` has run. */
export interface AgentFixture {
  readonly root: string;
  /** The running server. A test that restarts it assigns the new one here, so later calls and the cleanup use it. */
  server: TestServer;
  readonly token: string;
  /** Runs the CLI (against the server by default) and asserts it succeeded; returns its stdout. */
  ok(args: string[], env?: Record<string, string>): Promise<string>;
  /** Writes `files` under a fresh source directory in the root and pushes it as component:version. */
  push(component: string, version: string, files: Record<string, string | Buffer>): Promise<void>;
  /** A configuration as the server shows it. */
  showconf(name: string): Promise<ShownConfiguration>;
  /** Waits until the agent reports `configuration` in a state `accept` likes (to the server `on` returns); returns that status. */
  reported(agentName: string, configuration: string, accept: (status: ReportedConfiguration) => boolean, timeoutMs?: number, on?: () => TestServer): Promise<ReportedConfiguration>;
  /** Starts an agent that the cleanup kills if the test has not stopped it. */
  agent(options: Parameters<typeof startAgent>[0]): TestAgent;
}

/** A file's text, or undefined while it cannot be read (not written yet, or gone). */
export async function read(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').catch(() => undefined);
}

/** True while the process has neither exited nor been killed. */
export function alive(process: TestAgent['process']): boolean {
  return process.exitCode === null && process.signalCode === null;
}

/** Registers the fixture's `before` and `after` in the enclosing `describe` and returns it. */
export function agentFixture(options: AgentFixtureOptions): AgentFixture {
  let root: string | undefined;
  let server: TestServer | undefined;
  let token: string | undefined;
  const agents: TestAgent[] = [];
  // Read at the call, not when the describe is collected: before the `before` there is nothing yet.
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the agent fixture's ${what} was used before its before hook ran`);
    return value;
  };

  const fixture: AgentFixture = {
    get root() {
      return ready(root, 'root');
    },
    get server() {
      return ready(server, 'server');
    },
    set server(next: TestServer) {
      server = next;
    },
    get token() {
      return ready(token, 'token');
    },

    async ok(args, env = fixture.server.env) {
      const result = await runStrata(args, env);
      assert.equal(result.code, 0, `strata ${args.join(' ')}: ${result.stderr}`);
      return result.stdout;
    },

    async push(component, version, files) {
      const dir = path.join(fixture.root, 'src', `${component}-${version}`);
      const entries = Object.entries(files);
      for (const parent of new Set(entries.map(([file]) => path.dirname(path.join(dir, file))))) await mkdir(parent, { recursive: true });
      // In batches: a release of thousands of files would otherwise open them all at once.
      for (let start = 0; start < entries.length; start += 256) {
        await Promise.all(entries.slice(start, start + 256).map(([file, content]) => writeFile(path.join(dir, file), content)));
      }
      await fixture.ok(['push', dir, '--name', component, '--version', version]);
    },

    async showconf(name) {
      return JSON.parse(await fixture.ok(['showconf', '--name', name, '--json'])) as ShownConfiguration;
    },

    async reported(agentName, configuration, accept, timeoutMs = 20_000, on = () => fixture.server) {
      return waitFor(`${agentName} to report ${configuration}`, async () => {
        const status = (await agentRecord(on(), agentName)).configurations?.find((c) => c.configuration === configuration);
        return status && accept(status) ? status : undefined;
      }, timeoutMs, 150);
    },

    agent(agentOptions) {
      const started = startAgent(agentOptions);
      agents.push(started);
      return started;
    },
  };

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), options.prefix));
    server = await startServer(path.join(root, 'data'), options.serverArgs ?? [], { store: options.store ?? 'sqlite' });
    token = await joinToken(server);
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop('SIGKILL')));
    await server?.stop();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });
  return fixture;
}
