/**
 * authorized_keys files, as OpenSSH and deploy-tools read them: one public key per line (a line
 * that is not one is an error, as in deploy-tools, rather than a key silently missing),
 * optionally preceded by options (parsed past, not enforced — deploy-tools did not enforce them
 * either) and followed by a comment, which becomes part of the audit actor. Keys are parsed by
 * ssh2 and compared in constant time.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import { StrataError } from '../core/errors.ts';
import type { ParsedKey } from 'ssh2';
import { sshFingerprint } from './host-key.ts';

/** Most bytes an authorized_keys file may have. */
const MAX_FILE_BYTES = 1024 * 1024;

/** One key a file authorizes. */
export interface AuthorizedKey {
  /** The key as ssh2 parsed it, for signature checks. */
  key: ParsedKey;
  /** The public key blob (SSH wire format). */
  blob: Buffer;
  /** OpenSSH's SHA256 fingerprint of the blob. */
  fingerprint: string;
  /** The comment after the key, often user@host; empty when none. */
  comment: string;
}

/** Splits a line into words, keeping double-quoted parts (as in `command="a b"`) inside their word. */
function words(line: string): string[] {
  const out: string[] = [];
  let word = '';
  let quoted = false;
  for (const char of line) {
    if (char === '"') quoted = !quoted;
    if (!quoted && (char === ' ' || char === '\t')) {
      if (word) out.push(word);
      word = '';
      continue;
    }
    word += char;
  }
  if (word) out.push(word);
  return out;
}

/** Parses one line: undefined when it is blank or a comment; throws when it holds no key ssh2 understands. */
function parseLine(line: string, number: number): AuthorizedKey | undefined {
  const trimmed = line.trim();
  if (!trimmed || trimmed.startsWith('#')) return undefined;
  const parts = words(trimmed);
  // The key type is the first word followed by something base64 that parses as that key.
  for (let i = 0; i + 1 < parts.length; i++) {
    if (!/^[A-Za-z0-9+/]+={0,3}$/.test(parts[i + 1]!)) continue;
    const parsed = ssh2.utils.parseKey(`${parts[i]} ${parts[i + 1]}`);
    if (parsed instanceof Error) continue;
    const blob = parsed.getPublicSSH();
    return { key: parsed, blob, fingerprint: sshFingerprint(blob), comment: parts.slice(i + 2).join(' ') };
  }
  throw new Error(`line ${number} is not a public key`);
}

/** Every key in the text of an authorized_keys file, in order; throws naming the first line that is not a key. */
export function parseAuthorizedKeys(text: string): AuthorizedKey[] {
  return text.split(/\r?\n/).map((line, index) => parseLine(line, index + 1)).filter((key): key is AuthorizedKey => key !== undefined);
}

/** Reads an authorized_keys file; throws BAD_REQUEST with a line fit for a user when it is unreadable, has a line that is not a key, or has no key. */
export async function loadAuthorizedKeys(file: string, what: string): Promise<AuthorizedKey[]> {
  let text: string;
  try {
    const bytes = await readFile(file);
    if (bytes.length > MAX_FILE_BYTES) throw new StrataError('BAD_REQUEST', `${what} file ${file} is larger than ${MAX_FILE_BYTES} bytes`);
    text = bytes.toString('utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw code ? new StrataError('BAD_REQUEST', `cannot read ${what} file ${file}: ${code}`) : error;
  }
  let keys: AuthorizedKey[];
  try {
    keys = parseAuthorizedKeys(text);
  } catch (error) {
    throw new StrataError('BAD_REQUEST', `${what} file ${file}: ${(error as Error).message}`);
  }
  if (keys.length === 0) throw new StrataError('BAD_REQUEST', `${what} file ${file} has no public key: the SSH front needs at least one`);
  return keys;
}

/** The key in `keys` whose blob equals `blob`, compared in constant time; undefined when none. */
export function findKey(keys: readonly AuthorizedKey[], blob: Buffer): AuthorizedKey | undefined {
  let found: AuthorizedKey | undefined;
  for (const candidate of keys) {
    const same = candidate.blob.length === blob.length && timingSafeEqual(candidate.blob, blob);
    if (same && !found) found = candidate;
  }
  return found;
}
