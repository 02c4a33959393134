/**
 * Label selectors, with Kubernetes' semantics: `role=web`, `role==web`, `region!=eu`,
 * `tier in (a,b)`, `tier notin (c)`, `key` (the label exists), `!key` (it does not); a comma
 * means AND, and the empty selector picks everything. Shared by the server, the CLI and the
 * dashboard, so it imports nothing from `node:`.
 */

/** What one requirement tests. `!=` and `notin` also match agents without the label, as in Kubernetes. */
export type SelectorOperator = '=' | '!=' | 'in' | 'notin' | 'exists' | '!exists';

/** One comma-separated term of a selector. */
export interface Requirement {
  key: string;
  operator: SelectorOperator;
  /** One value for `=` and `!=`, one or more for `in` and `notin`, none for the existence tests. */
  values: string[];
}

/** A parsed selector: every requirement must hold. */
export type Selector = readonly Requirement[];

// The same shapes LabelsSchema accepts (src/protocol/agent.ts), so a selector can only name labels an agent can have.
const KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62}[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
const WORD_CHAR = /[A-Za-z0-9._/-]/;

type Token = { kind: 'word'; text: string; at: number } | { kind: 'op'; text: '=' | '==' | '!=' | '!' | '(' | ')' | ','; at: number } | { kind: 'end'; at: number };

/** Splits selector text into words and operators; positions are 0-based offsets. */
function tokenize(text: string, fail: (at: number, message: string) => never): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      i += 1;
    } else if (WORD_CHAR.test(c)) {
      const start = i;
      while (i < text.length && WORD_CHAR.test(text[i]!)) i += 1;
      tokens.push({ kind: 'word', text: text.slice(start, i), at: start });
    } else if (text.startsWith('==', i) || text.startsWith('!=', i)) {
      tokens.push({ kind: 'op', text: text.slice(i, i + 2) as '==' | '!=', at: i });
      i += 2;
    } else if (c === '=' || c === '!' || c === '(' || c === ')' || c === ',') {
      tokens.push({ kind: 'op', text: c, at: i });
      i += 1;
    } else {
      fail(i, `unexpected character ${JSON.stringify(c)}`);
    }
  }
  tokens.push({ kind: 'end', at: text.length });
  return tokens;
}

/** Describes a token for an error message. */
function describe(token: Token): string {
  return token.kind === 'end' ? 'the end' : JSON.stringify(token.text);
}

/**
 * Parses selector text. Throws an Error with a one-line message naming the position (1-based)
 * and what was expected, e.g. `invalid selector "tier in (a": expected "," or ")" in the value
 * list, found the end at position 11`.
 */
export function parseSelector(text: string): Selector {
  const fail = (at: number, message: string): never => {
    throw new Error(`invalid selector ${JSON.stringify(text)}: ${message} at position ${at + 1}`);
  };
  const tokens = tokenize(text, fail);
  let index = 0;
  const peek = (): Token => tokens[index]!;
  const next = (): Token => tokens[index++]!;
  const expectWord = (what: string, check: RegExp, after: string): string => {
    const token = next();
    if (token.kind !== 'word') return fail(token.at, `expected ${what} ${after}, found ${describe(token)}`);
    if (!check.test(token.text)) return fail(token.at, `${what} ${JSON.stringify(token.text)} is not valid (${what === 'a label key' ? 'up to 63 letters, digits, ".", "_", "-" or "/", starting and ending with a letter or digit' : 'up to 63 letters, digits, ".", "_" or "-", starting and ending with a letter or digit'})`);
    return token.text;
  };
  const requirements: Requirement[] = [];
  if (peek().kind === 'end') return requirements;
  for (;;) {
    const first = peek();
    if (first.kind === 'op' && first.text === '!') {
      next();
      requirements.push({ key: expectWord('a label key', KEY, 'after "!"'), operator: '!exists', values: [] });
    } else {
      const key = expectWord('a label key', KEY, requirements.length === 0 ? 'at the start' : 'after ","');
      const op = peek();
      if (op.kind === 'end' || (op.kind === 'op' && op.text === ',')) {
        requirements.push({ key, operator: 'exists', values: [] });
      } else if (op.kind === 'op' && (op.text === '=' || op.text === '==' || op.text === '!=')) {
        next();
        const valueToken = peek();
        // An empty value is allowed (`key=` matches a label set to ""), as in Kubernetes.
        const value = valueToken.kind === 'word' ? expectWord('a label value', VALUE, `after "${op.text}"`) : '';
        requirements.push({ key, operator: op.text === '!=' ? '!=' : '=', values: [value] });
      } else if (op.kind === 'word' && (op.text === 'in' || op.text === 'notin')) {
        next();
        const open = next();
        if (open.kind !== 'op' || open.text !== '(') fail(open.at, `expected "(" after "${op.text}", found ${describe(open)}`);
        const values: string[] = [];
        for (;;) {
          values.push(expectWord('a label value', VALUE, values.length === 0 ? 'after "("' : 'after ","'));
          const sep = next();
          if (sep.kind === 'op' && sep.text === ')') break;
          if (sep.kind !== 'op' || sep.text !== ',') fail(sep.at, `expected "," or ")" in the value list, found ${describe(sep)}`);
        }
        requirements.push({ key, operator: op.text, values });
      } else {
        fail(op.at, `expected "=", "==", "!=", "in", "notin", "," or the end after key ${JSON.stringify(key)}, found ${describe(op)}`);
      }
    }
    const after = next();
    if (after.kind === 'end') return requirements;
    if (after.kind !== 'op' || after.text !== ',') fail(after.at, `expected "," or the end, found ${describe(after)}`);
  }
}

/** True when the labels satisfy every requirement of the selector. */
export function matches(selector: Selector, labels: Readonly<Record<string, string>>): boolean {
  return selector.every((requirement) => {
    const has = Object.hasOwn(labels, requirement.key);
    const value = has ? labels[requirement.key] : undefined;
    switch (requirement.operator) {
      case 'exists':
        return has;
      case '!exists':
        return !has;
      case '=':
      case 'in':
        return has && requirement.values.includes(value!);
      case '!=':
      case 'notin':
        return !has || !requirement.values.includes(value!);
    }
  });
}

/** Formats one requirement in its canonical spelling. */
function formatRequirement(requirement: Requirement): string {
  switch (requirement.operator) {
    case 'exists':
      return requirement.key;
    case '!exists':
      return `!${requirement.key}`;
    case '=':
    case '!=':
      return `${requirement.key}${requirement.operator}${requirement.values[0] ?? ''}`;
    case 'in':
    case 'notin':
      return `${requirement.key} ${requirement.operator} (${[...new Set(requirement.values)].sort().join(',')})`;
  }
}

/**
 * The canonical text of a selector: `==` written `=`, value lists sorted and deduplicated, and
 * requirements sorted, so two spellings of the same selector format identically (assignments
 * are keyed by it).
 */
export function formatSelector(selector: Selector): string {
  return [...new Set(selector.map(formatRequirement))].sort().join(',');
}

/** Parses and re-formats selector text in its canonical spelling; throws like `parseSelector`. */
export function canonicalSelector(text: string): string {
  return formatSelector(parseSelector(text));
}
