/**
 * How deploy-tools' console reads a command line: split shell-like (whitespace separates words,
 * single quotes keep everything, double quotes keep everything but `\"`/`\\` escapes, a backslash
 * escapes the next character), then each command's flags parsed the way Go's `flag` package does
 * (`-flag value`, `-flag=value`, `--flag`, bare booleans, parsing stops at the first non-flag),
 * with Go's error lines and usage listing.
 */
import { parseLayerRef, type LayerRef } from '../../protocol/names.ts';

/** Longest command line the console accepts, in characters. */
export const MAX_LINE_CHARS = 64 * 1024;

/** A console mistake (a line that cannot be split, a bad flag, a refused argument); its message is what the user sees. */
export class ConsoleUsageError extends Error {
  override readonly name = 'ConsoleUsageError';
}

/** Splits a command line into words like a POSIX shell would, without expanding anything. */
export function splitCommandLine(line: string): string[] {
  if (line.length > MAX_LINE_CHARS) throw new ConsoleUsageError(`command line is longer than ${MAX_LINE_CHARS} characters`);
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (quote === "'") {
      if (char === "'") quote = undefined;
      else word += char;
    } else if (quote === '"') {
      if (char === '"') quote = undefined;
      else if (char === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) word += line[++i];
      else word += char;
    } else if (char === ' ' || char === '\t' || char === '\n' || char === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      inWord = true;
      if (char === '"' || char === "'") quote = char;
      else if (char === '\\' && i + 1 < line.length) word += line[++i];
      else word += char;
    }
  }
  if (quote) throw new ConsoleUsageError('invalid command line string');
  if (inWord) words.push(word);
  return words;
}

/** One flag of a console command. `list` flags may be repeated. */
export interface FlagSpec {
  name: string;
  kind: 'string' | 'bool' | 'list';
  usage: string;
}

/** Parsed flag values: strings, booleans, and arrays for list flags. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** Go's `flag.PrintDefaults` listing for `specs`, preceded by `Usage of NAME:`. */
export function usageText(command: string, specs: readonly FlagSpec[]): string {
  const lines = [`Usage of ${command}:`];
  for (const spec of [...specs].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const head = `  -${spec.name}${spec.kind === 'string' ? ' string' : spec.kind === 'list' ? ' value' : ''}`;
    // Go puts the usage on the same line when the flag is one letter and takes no value.
    lines.push(head.length <= 4 ? `${head}\t${spec.usage}` : `${head}\n    \t${spec.usage}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Go's strconv.ParseBool. */
function parseBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

/**
 * Parses `args` against `specs` as Go's flag package does. On a mistake throws a
 * ConsoleUsageError whose message is Go's error line followed by the usage listing; `-h` and
 * `-help` throw with the listing alone.
 */
export function parseFlags(command: string, specs: readonly FlagSpec[], args: readonly string[]): FlagValues {
  const values: FlagValues = {};
  const fail = (line: string | undefined): never => {
    throw new ConsoleUsageError(`${line === undefined ? '' : `${line}\n`}${usageText(command, specs)}`.replace(/\n$/, ''));
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.length < 2 || !arg.startsWith('-')) break;
    if (arg === '--') break;
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1);
    if (body.startsWith('-') || body.startsWith('=')) fail(`bad flag syntax: ${arg}`);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const inline = eq < 0 ? undefined : body.slice(eq + 1);
    const spec = specs.find((s) => s.name === name);
    if (!spec) {
      if (name === 'h' || name === 'help') fail(undefined);
      fail(`flag provided but not defined: -${name}`);
    }
    if (spec!.kind === 'bool') {
      const parsed = inline === undefined ? true : parseBool(inline);
      if (parsed === undefined) fail(`invalid boolean value ${JSON.stringify(inline)} for -${name}: parse error`);
      values[name] = parsed;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= args.length) fail(`flag needs an argument: -${name}`);
      value = args[++i]!;
    }
    if (spec!.kind === 'list') values[name] = [...((values[name] as string[] | undefined) ?? []), value];
    else values[name] = value;
  }
  return values;
}

/** Parses `-layer` values, refusing malformed ones with the line Go's flag package would print. */
export function layersOf(values: FlagValues): LayerRef[] {
  return ((values['layer'] as string[] | undefined) ?? []).map((text) => {
    try {
      return parseLayerRef(text);
    } catch (error) {
      throw new ConsoleUsageError(`invalid value ${JSON.stringify(text)} for flag -layer: ${(error as Error).message}`);
    }
  });
}
