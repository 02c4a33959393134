/** Helpers shared by the Store conformance suites: byte streams, outcomes, fixtures, watch waits. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { configurationId } from '../core/configuration-id.ts';
import { isStrataError } from '../core/errors.ts';
import type { ErrorCode } from '../protocol/error-codes.ts';
import type { ComponentVersion, Configuration, ConfigurationEvent, Store } from './contract.ts';

/** One hour in milliseconds. */
export const HOUR = 3_600_000;

/** The lower-case hex sha256 of `data`. */
export function sha(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** An async source yielding the given chunks. */
export async function* chunks(...parts: Uint8Array[]): AsyncGenerator<Uint8Array> { yield* parts; }

/** Every byte of a stream. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(Buffer.from(part as Uint8Array));
  return Buffer.concat(parts);
}

/** How reading a blob ended: the error (from getBlob or the stream) and the bytes delivered before it. */
export async function readOutcome(opening: Promise<{ stream: Readable }>): Promise<{ error: unknown; bytes: number }> {
  let bytes = 0;
  try {
    for await (const part of (await opening).stream) bytes += (part as Uint8Array).byteLength;
    return { error: undefined, bytes };
  } catch (error) {
    return { error, bytes };
  }
}

/** Asserts that `promise` rejects with a StrataError of `code`, and returns that error. */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<{ details: Record<string, unknown> | undefined }> {
  let caught: unknown;
  await assert.rejects(promise, (error) => {
    caught = error;
    return isStrataError(error, code);
  });
  return caught as { details: Record<string, unknown> | undefined };
}

/** Asserts a failed upload left neither a visible blob nor staged bytes for sweep to find. */
export async function assertNothingLeft(store: Store, sha256: string): Promise<void> {
  assert.equal(await store.statBlob(sha256), undefined);
  const report = await store.sweep({ graceMs: 0, now: new Date(Date.now() + HOUR) });
  assert.equal(report.uploadsRemoved, 0, 'the failed upload left staged bytes behind');
  assert.ok(!report.blobsDeleted.includes(sha256));
}

/** Uploads `content` (default: a text naming the version) and adds it as a version by `tester`. */
export async function addVersion(store: Store, component: string, version: string, content?: string): Promise<ComponentVersion> {
  const blob = await store.putBlob(chunks(Buffer.from(content ?? `${component}:${version}`)));
  return store.addVersion({ component, version, blob: blob.sha256, actor: 'tester' });
}

/** The resolved layer for a version. */
export function layerOf(v: ComponentVersion): { component: string; version: string; blob: string; size: number; createdAt: string } {
  return { component: v.component, version: v.version, blob: v.blob, size: v.size, createdAt: v.createdAt };
}

/** Writes a configuration of the given versions as `tester`, with its content id. */
export function putConfiguration(
  store: Store,
  name: string,
  versions: ComponentVersion[],
  expectedRevision: number,
  extra: { settings?: Record<string, unknown>; note?: string } = {},
): Promise<Configuration> {
  const layers = versions.map(layerOf);
  const id = configurationId(layers.map((l) => l.blob), extra.settings);
  return store.putConfiguration({ name, layers, id, expectedRevision, actor: 'tester', ...extra });
}

/** Watches from `afterSeq`, calling `act` after starting and after each event, until `stopName` shows up. */
export async function watchUntil(
  store: Store,
  afterSeq: number,
  stopName: string,
  act: (seen: number) => Promise<unknown> | undefined,
): Promise<ConfigurationEvent[]> {
  const controller = new AbortController();
  const events: ConfigurationEvent[] = [];
  const iterator = store.watchConfigurations({ afterSeq, signal: controller.signal })[Symbol.asyncIterator]();
  try {
    const first = iterator.next();
    await act(0);
    for (let next = first; ; next = iterator.next()) {
      const result = await withTimeout(next, 5000, `no event after ${JSON.stringify(events.map(summary))}`);
      if (result.done) throw new Error('the watch ended before the stop event');
      events.push(result.value);
      if (result.value.name === stopName) return events;
      await act(events.length);
    }
  } finally {
    controller.abort();
    await iterator.return?.();
  }
}

/** An event as [type, name, revision] for compact assertions. */
export function summary(event: ConfigurationEvent): [string, string, number | null] {
  return [event.type, event.name, event.type === 'put' ? event.configuration.revision : null];
}

/** Asserts seqs strictly increase and each put's seq is its configuration's seq. */
export function assertIncreasing(events: ConfigurationEvent[]): void {
  events.forEach((event, i) => {
    if (i > 0) assert.ok(event.seq > (events[i - 1]?.seq ?? Infinity), 'seqs must strictly increase');
    if (event.type === 'put') assert.equal(event.seq, event.configuration.seq);
  });
}

/** Rejects with `message` if `promise` takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
