/**
 * `--service FILE` of addconf and changeconf: a service spec in JSON or TOML, validated by the
 * same schema the agent uses, with defaults applied (so what is stored is what runs). Every
 * problem is one line naming the file and the field.
 */
import { readFile } from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import { ServiceSpecSchema, type ServiceSpec } from '../../protocol/service.ts';
import { describeIssue } from '../../agent/service/resolve.ts';
import { UsageError } from '../context.ts';

/** Parses and validates the text of a service file (JSON when it starts with `{`, TOML otherwise). */
export function parseServiceText(text: string, name = 'service file'): ServiceSpec {
  let data: unknown;
  const json = text.trimStart().startsWith('{');
  try {
    data = json ? JSON.parse(text) : parse(text);
  } catch (error) {
    if (error instanceof TomlError) throw new UsageError(`${name}: invalid TOML at line ${error.line}, column ${error.column}: ${error.message.split('\n')[0]}`);
    throw new UsageError(`${name}: invalid ${json ? 'JSON' : 'TOML'}: ${(error as Error).message.split('\n')[0]}`);
  }
  const parsed = ServiceSpecSchema.safeParse(data);
  if (!parsed.success) throw new UsageError(`${name}: ${describeIssue(parsed.error.issues[0])}`);
  return parsed.data;
}

/** Reads and validates a service file. */
export async function readServiceFile(file: string): Promise<ServiceSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return parseServiceText(text, file);
}
