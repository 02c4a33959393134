/**
 * Aligned text tables: Strata's own layout, with a header and no trailing spaces, built on the
 * tabwriter layout deploy-tools' outputs use (`src/core/deploy-tools-text.ts`).
 */
import { tabwrite } from '../core/deploy-tools-text.ts';

/** A header row plus rows, columns separated by three spaces, no trailing spaces. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return tabwrite([header, ...rows]).split('\n').map((line) => line.trimEnd()).join('\n');
}
