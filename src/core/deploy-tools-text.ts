/**
 * deploy-tools' console outputs as text: `showconf` (with `-v`), `showcomp`, and the Go
 * text/tabwriter layout they use (every cell padded to its column's width plus three spaces,
 * trailing spaces kept). The CLI and the SSH console print through these, so both match
 * deployctl byte for byte.
 */
import { deployToolsHash } from './configuration-id.ts';

/** Go tabwriter with `padding`, every cell tab-terminated: widths per column, trailing padding kept. */
export function tabwrite(rows: readonly (readonly string[])[], padding = 3): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows.map((row) => `${row.map((cell, i) => cell.padEnd(widths[i]! + padding + cell.length - [...cell].length)).join('')}\n`).join('');
}

/** An RFC 3339 time to the second, as deploy-tools prints it. */
export function secondsTime(iso: string): string {
  return `${new Date(iso).toISOString().slice(0, 19)}Z`;
}

/** What showconf needs of a configuration revision (the store's record and the API's view both fit). */
export interface ShowconfInput {
  name: string;
  updatedAt: string;
  layers: readonly { component: string; version: string; blob: string; createdAt: string }[];
}

/** deploy-tools' showconf output, `-v` adding the Name/Mtime/Hash header. */
export function renderShowconf(configuration: ShowconfInput, verbose: boolean): string {
  const rows = tabwrite(configuration.layers.map((l) => [l.component, l.version, secondsTime(l.createdAt)]));
  if (!verbose) return rows;
  const hash = deployToolsHash(configuration.layers.map((l) => l.blob));
  return `Name:\t${configuration.name}\nMtime:\t${secondsTime(configuration.updatedAt)}\nHash:\t${hash}\n\n${rows}`;
}

/** deploy-tools' showcomp output: one `time   version   ` row per version, oldest first. */
export function renderShowcomp(versions: readonly { version: string; createdAt: string }[]): string {
  return tabwrite(versions.map((v) => [secondsTime(v.createdAt), v.version]));
}
