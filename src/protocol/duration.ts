/**
 * Durations as people write them: `500ms`, `30s`, `5m`, `2h`, `1d`, or a combination such as `1m30s`.
 * Every duration Strata prints or parses goes through here.
 */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a duration into milliseconds; throws an Error fit for a user on bad input. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(trimmed)) {
    throw new Error(`invalid duration ${JSON.stringify(text)}: write it like 500ms, 30s, 5m or 1h30m`);
  }
  let total = 0;
  for (const match of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
    total += Number(match[1]) * UNITS[match[2]!]!;
  }
  return Math.round(total);
}

/** Formats milliseconds the way `parseDuration` reads them, rounded to the largest sensible unit. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(Math.round(ms));
  if (rest < 1000) return `${sign}${rest}ms`;
  if (rest < 60_000) {
    const seconds = rest / 1000;
    return `${sign}${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)}s`;
  }
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    const count = Math.floor(rest / size);
    if (count > 0) parts.push(`${count}${unit}`);
    rest -= count * size;
  }
  return sign + parts.slice(0, 2).join('');
}
