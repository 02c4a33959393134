/**
 * The content id of a configuration, and deploy-tools' configuration hash.
 * deploy-tools hashes the concatenation of `<layer sha256>\n` per layer; Strata's id is exactly
 * that when a configuration has no settings, so a plain layered configuration has the same id
 * in both systems. Settings (service, hook) are appended as canonical JSON, so changing them
 * changes the id and redeploys, while identical layers and settings never do.
 */
import { createHash } from 'node:crypto';

/** deploy-tools' `Hash` of a configuration: sha256 over each layer's blob hash and a newline. */
export function deployToolsHash(layerBlobs: readonly string[]): string {
  const hash = createHash('sha256');
  for (const blob of layerBlobs) hash.update(`${blob}\n`);
  return hash.digest('hex');
}

/** JSON with object keys sorted at every depth, so equal values always serialise equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return inner;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(inner).sort()) sorted[key] = (inner as Record<string, unknown>)[key];
    return sorted;
  });
}

/** Strata's configuration id from its layers' blob hashes and its optional settings. */
export function configurationId(layerBlobs: readonly string[], settings?: Record<string, unknown>): string {
  const base = deployToolsHash(layerBlobs);
  if (settings === undefined || Object.keys(settings).length === 0) return base;
  return createHash('sha256').update(`${base}\nsettings\n${canonicalJson(settings)}`).digest('hex');
}
