/**
 * deploy-tools' console outputs as text: `showconf` (with `-v`), `showcomp`, and the Go
 * text/tabwriter layout they use (every cell padded to its column's width plus three spaces,
 * trailing spaces kept). The CLI and the SSH console print through these, so both match
 * deployctl byte for byte.
 */
import { deployToolsHash } from './configuration-id.ts';
import { ImageConfigSchema } from '../protocol/service.ts';

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
  settings?: Record<string, unknown> | undefined;
}

/** The `-v` lines for an imported image's config (`settings.image`), after deploy-tools' lines; empty without one. */
export function renderImageConfig(settings: Record<string, unknown> | undefined): string {
  const parsed = ImageConfigSchema.safeParse(settings?.['image']);
  if (settings?.['image'] === undefined || !parsed.success) return '';
  const image = parsed.data;
  const lines = [
    `Image:\t${image.ref ?? '(untagged)'}`,
    `Entrypoint:\t${JSON.stringify(image.entrypoint)}`,
    `Cmd:\t${JSON.stringify(image.cmd)}`,
    `Workdir:\t${image.workdir ?? ''}`,
    `User:\t${image.user ?? ''}`,
    ...Object.entries(image.env).map(([key, value]) => `Env:\t${key}=${value}`),
  ];
  return `\n${lines.join('\n')}\n`;
}

/** deploy-tools' showconf output, `-v` adding the Name/Mtime/Hash header (and an imported image's config after the layers). */
export function renderShowconf(configuration: ShowconfInput, verbose: boolean): string {
  const rows = tabwrite(configuration.layers.map((l) => [l.component, l.version, secondsTime(l.createdAt)]));
  if (!verbose) return rows;
  const hash = deployToolsHash(configuration.layers.map((l) => l.blob));
  return `Name:\t${configuration.name}\nMtime:\t${secondsTime(configuration.updatedAt)}\nHash:\t${hash}\n\n${rows}${renderImageConfig(configuration.settings)}`;
}

/** deploy-tools' showcomp output: one `time   version   ` row per version, oldest first. */
export function renderShowcomp(versions: readonly { version: string; createdAt: string }[]): string {
  return tabwrite(versions.map((v) => [secondsTime(v.createdAt), v.version]));
}
