/**
 * Names of components, versions and configurations, and the `component:version` layer reference.
 * Shared by the server, the CLI and (later) the dashboard, so it imports nothing from `node:`.
 */
import { z } from 'zod';

/** Longest name accepted, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 128;

/** Why a name is invalid, or undefined when it is valid. */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) return `is longer than ${MAX_NAME_BYTES} bytes`;
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'contains a control character';
  if (/\s/.test(name)) return 'contains whitespace';
  if (name.includes('/')) return 'contains "/"';
  if (name.includes(':')) return 'contains ":"';
  if (name === '.' || name === '..') return 'is "." or ".."';
  return undefined;
}

/** A component, version or configuration name. */
export const Name = z.string().superRefine((value, ctx) => {
  const problem = nameProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: `name ${JSON.stringify(value)} ${problem}` });
});

/** A lower-case sha256 digest in hex. */
export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits');

/** True when `value` is a lower-case sha256 digest in hex. */
export function isSha256(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value);
}

/** One layer of a configuration: a version of a component. */
export interface LayerRef {
  component: string;
  version: string;
}

/** The wire form of a layer reference. */
export const LayerRefSchema = z.object({ component: Name, version: Name });

/** Parses `component:version`; throws an Error whose message is fit for a user. */
export function parseLayerRef(text: string): LayerRef {
  const at = text.indexOf(':');
  if (at < 0) throw new Error(`layer ${JSON.stringify(text)} must be written component:version`);
  const component = text.slice(0, at);
  const version = text.slice(at + 1);
  for (const [what, value] of [['component', component], ['version', version]] as const) {
    const problem = nameProblem(value);
    if (problem) throw new Error(`layer ${JSON.stringify(text)}: ${what} name ${problem}`);
  }
  return { component, version };
}

/** Formats a layer reference as `component:version`. */
export function formatLayerRef(layer: LayerRef): string {
  return `${layer.component}:${layer.version}`;
}

/** Why a list of layers is unacceptable (empty, or a component twice), or undefined. */
export function layersProblem(layers: readonly LayerRef[]): string | undefined {
  if (layers.length === 0) return 'a configuration needs at least one layer';
  const seen = new Set<string>();
  for (const layer of layers) {
    if (seen.has(layer.component)) return `component ${JSON.stringify(layer.component)} is named twice in the layers`;
    seen.add(layer.component);
  }
  return undefined;
}
