/**
 * The agent's own config file (`strata agent --config FILE`, TOML): what this machine allows
 * orders to do. The server only names an entry and supplies values; the command lines, the
 * allowed values, the sync sources and destinations all come from here, so a compromised server
 * cannot make an agent run anything its operator did not list.
 *
 * ```toml
 * [exec.service-nginx]
 * command = ["/usr/sbin/service", "nginx", "{1}"]   # argv; {N} is replaced by the order's Nth arg
 * args = ["start|stop|reload|status"]               # one regex per placeholder, matched whole
 * timeout = "30s"                                    # default 30s
 * max_output = "64KiB"                               # per stream, default 64KiB (the tail is kept)
 *
 * [sync]
 * allowed_destinations = ["/srv/"]                  # a group's destination must resolve under one
 * rsync = "/usr/bin/rsync"                           # default: rsync on PATH
 *
 * [sync.group.www]
 * source = "rsync://127.0.0.1:8730/www/"            # or an absolute local directory
 * destination = "/srv/www/"
 * include = []
 * exclude = [".git/"]
 * options = ["--delete"]                             # from the allow-list in orders/rsync-options.ts
 * ```
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { z } from 'zod';
import { parseDuration } from '../protocol/duration.ts';
import { parseSize } from '../protocol/size.ts';
import { nameProblem } from '../protocol/names.ts';
import { rsyncOptionProblem } from './orders/rsync-options.ts';

/** A whitelisted command, ready to run. */
export interface ExecEntry {
  name: string;
  /** argv; elements equal to `{N}` are placeholders. */
  command: string[];
  /** The pattern each argument must match whole, by position (placeholder N uses patterns[N-1]). */
  patterns: RegExp[];
  timeoutMs: number;
  maxOutputBytes: number;
}

/** An rsync group: where from, where to, and how. */
export interface SyncGroup {
  name: string;
  source: string;
  destination: string;
  include: string[];
  exclude: string[];
  options: string[];
}

/** The parsed config file. */
export interface AgentConfig {
  exec: Map<string, ExecEntry>;
  sync: { allowedDestinations: string[]; rsync: string; groups: Map<string, SyncGroup> };
}

/** An unreadable or invalid config file; the message is one line naming the file and the key. */
export class AgentConfigError extends Error {
  override readonly name = 'AgentConfigError';
}

/** The config of an agent started without `--config`: nothing allowed. */
export function emptyAgentConfig(): AgentConfig {
  return { exec: new Map(), sync: { allowedDestinations: [], rsync: 'rsync', groups: new Map() } };
}

const PLACEHOLDER = /\{(\d+)\}/;
const CONTROL = /[\u0000-\u001f\u007f]/;

const Text = z.string().min(1).refine((s) => !CONTROL.test(s), 'must not contain control characters');
const AbsolutePath = Text.refine((s) => path.isAbsolute(s), 'must be an absolute path');
const Duration = z.string().transform((text, ctx) => convert(text, parseDuration, ctx));
const Size = z.string().transform((text, ctx) => convert(text, parseSize, ctx));

function convert(text: string, parser: (text: string) => number, ctx: z.RefinementCtx): number {
  try {
    return parser(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
}

const Pattern = z.string().transform((text, ctx) => {
  try {
    // Always anchored and never multi-line, so `^…$` cannot match one line of a longer argument.
    return new RegExp(`^(?:${text})$`);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `invalid regular expression: ${(error as Error).message}` });
    return z.NEVER;
  }
});

const ExecSchema = z.strictObject({
  command: z.array(Text).min(1),
  args: z.array(Pattern).default([]),
  timeout: Duration.default(30_000),
  max_output: Size.default(64 * 1024),
});

const GroupSchema = z.strictObject({
  source: Text.refine((s) => s.startsWith('rsync://') || path.isAbsolute(s), 'must be an rsync:// URL or an absolute directory'),
  destination: AbsolutePath,
  include: z.array(Text).default([]),
  exclude: z.array(Text).default([]),
  options: z.array(z.string()).default([]).superRefine((options, ctx) => {
    options.forEach((option, index) => {
      const problem = rsyncOptionProblem(option);
      if (problem) ctx.addIssue({ code: 'custom', path: [index], message: problem });
    });
  }),
});

const FileSchema = z.strictObject({
  exec: z.record(z.string(), ExecSchema).default({}),
  sync: z.strictObject({
    allowed_destinations: z.array(AbsolutePath).default([]),
    rsync: Text.default('rsync'),
    group: z.record(z.string(), GroupSchema).default({}),
  }).default({ allowed_destinations: [], rsync: 'rsync', group: {} }),
});

/** Checks an exec entry's placeholders: whole arguments, numbered 1…N with one pattern each. */
function execEntry(name: string, raw: z.infer<typeof ExecSchema>): ExecEntry {
  const used = new Set<number>();
  raw.command.forEach((element, index) => {
    const match = PLACEHOLDER.exec(element);
    if (!match) return;
    if (index === 0) throw new AgentConfigError(`exec.${name}.command: the program (first element) cannot be a placeholder`);
    if (element !== match[0]) throw new AgentConfigError(`exec.${name}.command[${index}]: a placeholder must be a whole argument, not part of ${JSON.stringify(element)}`);
    used.add(Number(match[1]));
  });
  for (let n = 1; n <= raw.args.length; n++) {
    if (!used.has(n)) throw new AgentConfigError(`exec.${name}.args: ${raw.args.length} patterns but the command has no {${n}}`);
  }
  for (const n of used) {
    if (n < 1 || n > raw.args.length) throw new AgentConfigError(`exec.${name}.command: {${n}} has no pattern in args (it has ${raw.args.length})`);
  }
  return { name, command: raw.command, patterns: raw.args, timeoutMs: raw.timeout, maxOutputBytes: raw.max_output };
}

/** Refuses names that could not travel in an order, or would escape a path. */
function checkName(kind: string, name: string): void {
  const problem = nameProblem(name);
  if (problem) throw new AgentConfigError(`${kind}.${JSON.stringify(name)}: the name ${problem}`);
}

/** Parses and validates the text of a config file; throws AgentConfigError (without the file name). */
export function parseAgentConfig(text: string): AgentConfig {
  let data: unknown;
  try {
    data = parse(text);
  } catch (error) {
    if (error instanceof TomlError) throw new AgentConfigError(`invalid TOML at line ${error.line}, column ${error.column}: ${error.message.split('\n')[0]}`);
    throw error;
  }
  const parsed = FileSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('').replace(/^\./, '');
    const message = issue.code === 'unrecognized_keys' ? `unknown key ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}` : issue.message;
    throw new AgentConfigError(key ? `${key}: ${message}` : message);
  }
  const config = emptyAgentConfig();
  for (const [name, raw] of Object.entries(parsed.data.exec)) {
    checkName('exec', name);
    config.exec.set(name, execEntry(name, raw));
  }
  const sync = parsed.data.sync;
  config.sync.allowedDestinations = sync.allowed_destinations.map((prefix) => path.resolve(prefix));
  config.sync.rsync = sync.rsync;
  for (const [name, group] of Object.entries(sync.group)) {
    checkName('sync.group', name);
    config.sync.groups.set(name, { name, ...group });
  }
  return config;
}

/** Reads and validates a config file; every failure is one line naming the file (and key). */
export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new AgentConfigError(`${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    return parseAgentConfig(text);
  } catch (error) {
    if (error instanceof AgentConfigError) throw new AgentConfigError(`${file}: ${error.message}`);
    throw error;
  }
}
