/**
 * deploy-tools' configuration JSON (`configs/NAME.json`, the agent's state.json and STATEFILE):
 * tab-indented, trailing newline, Go's field names and RFC 3339 times with trailing zeros of the
 * fraction trimmed, as Go's `time.RFC3339Nano` prints them.
 */
import type { Configuration } from '../store/contract.ts';
import { deployToolsHash } from './configuration-id.ts';

/** An ISO time in Go's RFC3339Nano form (fraction without trailing zeros, none when zero). */
export function goTime(iso: string): string {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(new Date(iso).toISOString());
  if (!match) return iso;
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  return `${match[1]}${fraction ? `.${fraction}` : ''}Z`;
}

/** The deploy-tools document of a configuration revision. */
export function deployToolsDocument(configuration: Configuration): Record<string, unknown> {
  return {
    Name: configuration.name,
    Mtime: goTime(configuration.updatedAt),
    Hash: deployToolsHash(configuration.layers.map((layer) => layer.blob)),
    Layers: configuration.layers.map((layer) => ({
      Name: layer.component,
      Version: layer.version,
      File: `files/${layer.blob}`,
      Hash: layer.blob,
      Ctime: goTime(layer.createdAt),
    })),
  };
}

/** The document as deploy-tools writes it: tab-indented JSON with a trailing newline. */
export function renderDeployToolsJson(configuration: Configuration): string {
  return `${JSON.stringify(deployToolsDocument(configuration), null, '\t')}\n`;
}
