/**
 * Aligned text tables. `tabwrite` reproduces Go's text/tabwriter as deploy-tools uses it
 * (every cell padded to its column's width plus the padding, trailing spaces kept), so
 * deployctl's outputs match byte for byte; `table` is Strata's own, with a header and no
 * trailing spaces.
 */

/** Go tabwriter with `padding`, every cell tab-terminated: widths per column, trailing padding kept. */
export function tabwrite(rows: readonly (readonly string[])[], padding = 3): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows.map((row) => `${row.map((cell, i) => cell.padEnd(widths[i]! + padding + cell.length - [...cell].length)).join('')}\n`).join('');
}

/** A header row plus rows, columns separated by three spaces, no trailing spaces. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return tabwrite([header, ...rows]).split('\n').map((line) => line.trimEnd()).join('\n');
}
