/** The bounds every backend applies to the per-host results it keeps (see `Store.finishOrder`). */
import type { HostResult } from '../protocol/orders.ts';
import { ORDER_CONTENT_MAX_BYTES, ORDER_MESSAGE_MAX_CHARS } from './contract.ts';

/** A host result cut to the sizes a stored order keeps. */
export function boundedResult(result: HostResult): HostResult {
  const bounded: HostResult = { ok: result.ok, code: result.code, message: result.message.slice(0, ORDER_MESSAGE_MAX_CHARS), durationMs: result.durationMs };
  if (result.content === undefined) return bounded;
  const json = JSON.stringify(result.content);
  if (json === undefined) return bounded;
  const bytes = Buffer.byteLength(json);
  if (bytes <= ORDER_CONTENT_MAX_BYTES) return { ...bounded, content: result.content };
  // Cutting at a byte count may split a character; decoding replaces the broken tail, which is fine for a preview.
  const preview = Buffer.from(json).subarray(0, ORDER_CONTENT_MAX_BYTES).toString('utf8');
  return { ...bounded, content: { truncated: true, bytes, preview } };
}

/** Every host's result of an order, bounded. */
export function boundedResults(results: Record<string, HostResult>): Record<string, HostResult> {
  return Object.fromEntries(Object.entries(results).map(([host, result]) => [host, boundedResult(result)]));
}
