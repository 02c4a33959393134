/** The human summary of an image import, one line per layer and one for the configuration; the CLI and the SSH console print the same. */
import { formatBytes } from '../../protocol/size.ts';
import type { ImportResult } from './types.ts';

/** The summary lines of an import, without trailing newlines. */
export function importReportLines(result: ImportResult): string[] {
  const lines = result.layers.map((layer) => `${layer.component}:${layer.version}   ${layer.added ? 'added' : 'exists'}   ${layer.entries} ${layer.entries === 1 ? 'entry' : 'entries'}, ${formatBytes(layer.size)}`);
  const source = result.ref ? `${result.ref} (${result.layout} layout)` : `image (${result.layout} layout)`;
  const what = result.changed ? `revision ${result.revision} (id ${result.id})` : `unchanged at revision ${result.revision}`;
  lines.push(`imported ${source} as configuration ${result.configuration}: ${what}`);
  return lines;
}
